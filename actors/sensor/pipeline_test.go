package sensor

import "testing"

func TestPipelineTransitions(t *testing.T) {
	const limit, limitBytes = 3, 100
	for _, tc := range []struct {
		name  string
		steps func(p *pipeline)
		want  pipelineCounts
		next  int64 // bytes of one more submission (default 1)
		admit bool  // whether that submission is admitted after steps
		room  int
	}{
		{"empty", func(*pipeline) {}, pipelineCounts{}, 0, true, 3},
		{"submissions at the limit", func(p *pipeline) { p.admit(1); p.admit(1); p.admit(1) },
			pipelineCounts{inflight: 3, bytes: 3}, 0, false, 3},
		{"a refused submission takes no slot and no bytes", func(p *pipeline) { p.admit(1); p.admit(1); p.admit(1); p.admit(1) },
			pipelineCounts{inflight: 3, bytes: 3}, 0, false, 3},
		{"answered frees the slot and the bytes", func(p *pipeline) { p.admit(10); p.answered(10) }, pipelineCounts{}, 0, true, 3},
		{"bytes at the limit refuse", func(p *pipeline) { p.admit(60); p.admit(50) },
			pipelineCounts{inflight: 1, bytes: 60}, 41, false, 3},
		{"bytes up to the limit admit", func(p *pipeline) { p.admit(60) },
			pipelineCounts{inflight: 1, bytes: 60}, 40, true, 3},
		{"a submission larger than the limit is admitted alone", func(p *pipeline) { p.admit(500) },
			pipelineCounts{inflight: 1, bytes: 500}, 0, false, 3},
		{"a settled submission holds what it reports", func(p *pipeline) { p.admit(80); p.settled(80, 30) },
			pipelineCounts{inflight: 1, bytes: 30}, 71, false, 3},
		{"a reservation counts against the limit", func(p *pipeline) { p.admit(80) },
			pipelineCounts{inflight: 1, bytes: 80}, 21, false, 3},
		{"queued tests' bytes count against the limit", func(p *pipeline) { p.dispatched(1, 95) },
			pipelineCounts{queued: 1, bytes: 95}, 6, false, 2},
		{"tests in the pool count against the limit", func(p *pipeline) { p.dispatched(2, 2); p.completionSent() },
			pipelineCounts{queued: 2, completing: 1, bytes: 2}, 0, false, 0},
		{"one test through the whole pipeline", func(p *pipeline) {
			p.admit(90)
			p.settled(90, 40)
			p.dispatched(1, 24)
			p.answered(40)
			p.completionSent()
			p.processed(1, 24)
			p.committed(1)
		}, pipelineCounts{}, 0, true, 3},
		{"discarded and abandoned", func(p *pipeline) {
			p.dispatched(2, 20)
			p.discarded(2, 20)
			p.completionSent()
			p.abandoned(1)
		}, pipelineCounts{}, 0, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(limit, limitBytes)
			tc.steps(p)
			if got := p.counts(); got != tc.want {
				t.Fatalf("counts %+v, want %+v", got, tc.want)
			}
			if got := p.room(); got != tc.room {
				t.Errorf("room %d, want %d", got, tc.room)
			}
			if got := p.roomBytes(); got != limitBytes-tc.want.bytes {
				t.Errorf("roomBytes %d, want %d", got, limitBytes-tc.want.bytes)
			}
			if got := p.idle(); got != (tc.want.inflight == 0 && tc.want.queued == 0 && tc.want.completing == 0) {
				t.Errorf("idle %v with %+v", got, tc.want)
			}
			next := tc.next
			if next == 0 {
				next = 1
			}
			if got := p.admit(next); got != tc.admit {
				t.Errorf("admit(%d) %v, want %v", next, got, tc.admit)
			}
		})
	}
}
