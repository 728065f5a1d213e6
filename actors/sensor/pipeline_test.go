package sensor

import "testing"

func TestPipelineTransitions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(p *pipeline)
		want  pipelineCounts
		admit bool // whether one more submission is admitted after steps
		room  int
	}{
		{"empty", func(*pipeline) {}, pipelineCounts{}, true, 3},
		{"submissions at the limit", func(p *pipeline) { p.admit(); p.admit(); p.admit() },
			pipelineCounts{inflight: 3}, false, 3},
		{"a refused submission takes no slot", func(p *pipeline) { p.admit(); p.admit(); p.admit(); p.admit() },
			pipelineCounts{inflight: 3}, false, 3},
		{"answered frees the slot", func(p *pipeline) { p.admit(); p.answered() }, pipelineCounts{}, true, 3},
		{"tests in the pool count against the limit", func(p *pipeline) { p.dispatched(2); p.completionSent() },
			pipelineCounts{queued: 2, completing: 1}, false, 0},
		{"one test through the whole pipeline", func(p *pipeline) {
			p.admit()
			p.dispatched(1)
			p.answered()
			p.completionSent()
			p.processed(1)
			p.committed(1)
		}, pipelineCounts{}, true, 3},
		{"discarded and abandoned", func(p *pipeline) {
			p.dispatched(2)
			p.discarded(2)
			p.completionSent()
			p.abandoned(1)
		}, pipelineCounts{}, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(3)
			tc.steps(p)
			if got := p.counts(); got != tc.want {
				t.Fatalf("counts %+v, want %+v", got, tc.want)
			}
			if got := p.room(); got != tc.room {
				t.Errorf("room %d, want %d", got, tc.room)
			}
			if got := p.idle(); got != (tc.want == pipelineCounts{}) {
				t.Errorf("idle %v with %+v", got, tc.want)
			}
			if got := p.admit(); got != tc.admit {
				t.Errorf("admit %v, want %v", got, tc.admit)
			}
		})
	}
}
