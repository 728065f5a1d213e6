package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sensorhub/messages"
)

// Retry pacing of KeySource.Run while the bucket or NATS is missing.
const (
	keySourceMinBackoff = 100 * time.Millisecond
	keySourceMaxBackoff = 5 * time.Second
	// publishTimeout bounds one attempt of PublishJWKS when ctx has no deadline.
	publishTimeout = 5 * time.Second
)

// errWatchEnded means the KV watcher's channel closed (the subscription went
// away, e.g. the connection was closed or the bucket deleted).
var errWatchEnded = errors.New("jwks watch ended")

// errReconnected ends a watch when the connection came back: a restarted
// server lost the watcher's ephemeral consumer, and the ordered consumer
// would notice only after several missed heartbeats (about 20s).
var errReconnected = errors.New("nats reconnected")

// KeySource keeps the JWKS that auth publishes in the JetStream KV bucket
// messages.BucketKeys (key messages.KeyJWKS) and hands out a Verifier for
// it, so that a role can verify tokens locally while auth does not answer.
// The last good key set is kept while NATS or the bucket is unavailable.
type KeySource struct {
	js     jetstream.JetStream
	cfg    VerifierConfig
	logger *slog.Logger

	cur      atomic.Pointer[Verifier]
	haveOnce sync.Once
	have     chan struct{}

	mu   sync.Mutex
	down bool // last state logged: the watch is not running
}

// NewKeySource returns a KeySource reading from js; call Run to start it.
// A nil logger logs to slog.Default().
func NewKeySource(js jetstream.JetStream, cfg VerifierConfig, logger *slog.Logger) *KeySource {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	return &KeySource{js: js, cfg: cfg, logger: logger.With("component", "jwks"), have: make(chan struct{})}
}

// Verifier returns the verifier for the latest key set, and false while no
// key set was received yet.
func (k *KeySource) Verifier() (*Verifier, bool) {
	v := k.cur.Load()
	return v, v != nil
}

// Ready is closed once a key set is available.
func (k *KeySource) Ready() <-chan struct{} { return k.have }

// Set installs a key set obtained another way (for instance from the auth
// jwks endpoint at start-up). A later KV update replaces it.
func (k *KeySource) Set(jwks messages.JWKS) error {
	v, err := NewVerifier(jwks, k.cfg)
	if err != nil {
		return fmt.Errorf("set jwks: %w", err)
	}
	k.cur.Store(v)
	k.haveOnce.Do(func() { close(k.have) })
	return nil
}

// Run watches the key until ctx ends and only returns then. While the
// bucket does not exist yet or NATS is down it retries with a capped
// exponential backoff, logging once per change between watching and not.
func (k *KeySource) Run(ctx context.Context) {
	var reconnected chan nats.Status
	if nc := k.js.Conn(); nc != nil {
		reconnected = nc.StatusChanged(nats.CONNECTED)
		defer nc.RemoveStatusListener(reconnected)
	}
	backoff := keySourceMinBackoff
	for ctx.Err() == nil {
		watched, err := k.watch(ctx, reconnected)
		if ctx.Err() != nil {
			return
		}
		if watched {
			backoff = keySourceMinBackoff
		}
		if errors.Is(err, errReconnected) {
			continue // watch again at once, from the last value
		}
		k.setDown(true, err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, keySourceMaxBackoff)
	}
}

// watch follows the key until the watcher ends or ctx does. watched says
// whether the watch got going (so the backoff may start over).
func (k *KeySource) watch(ctx context.Context, reconnected <-chan nats.Status) (watched bool, err error) {
	lookup, cancel := context.WithTimeout(ctx, publishTimeout)
	kv, err := k.js.KeyValue(lookup, messages.BucketKeys)
	cancel()
	if err != nil {
		return false, fmt.Errorf("open bucket %s: %w", messages.BucketKeys, err)
	}
	w, err := kv.Watch(ctx, messages.KeyJWKS)
	if err != nil {
		return false, fmt.Errorf("watch %s/%s: %w", messages.BucketKeys, messages.KeyJWKS, err)
	}
	defer func() { _ = w.Stop() }()
	k.setDown(false, nil)
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-reconnected:
			return true, errReconnected
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return true, errWatchEnded
			case e == nil:
				// All initial values delivered.
				if _, have := k.Verifier(); !have {
					k.logger.Info("no JWKS published yet; waiting for auth")
				}
			case e.Operation() == jetstream.KeyValuePut:
				k.install(e.Value(), e.Revision())
			default:
				// A delete or purge: keep the last keys; tokens signed with
				// them are still good until they expire.
				k.logger.Warn("JWKS deleted from the bucket; keeping the last keys")
			}
		}
	}
}

func (k *KeySource) install(data []byte, revision uint64) {
	jwks, err := messages.DecodeJWKS(data)
	if err == nil {
		var v *Verifier
		if v, err = NewVerifier(jwks, k.cfg); err == nil {
			k.cur.Store(v)
			k.haveOnce.Do(func() { close(k.have) })
			k.logger.Debug("JWKS updated", "revision", revision, "kids", v.KeyIDs())
			return
		}
	}
	k.logger.Warn("ignoring unusable JWKS from the bucket; keeping the last keys", "revision", revision, "err", err)
}

func (k *KeySource) setDown(down bool, err error) {
	k.mu.Lock()
	changed := k.down != down
	k.down = down
	k.mu.Unlock()
	if !changed {
		return
	}
	_, have := k.Verifier()
	if down {
		k.logger.Warn("JWKS watch unavailable; retrying", "err", err, "have_keys", have)
		return
	}
	k.logger.Info("JWKS watch running")
}

// PublishJWKS creates or updates the bucket messages.BucketKeys (file
// storage, history 1, replicas copies: 3 on a NATS cluster, so that the
// keys outlive a lost node; 0 means 1) and puts jwks under
// messages.KeyJWKS, replacing what was there: every copy of auth must sign
// with the same key file. A ctx without deadline is bounded by a few
// seconds.
func PublishJWKS(ctx context.Context, js jetstream.JetStream, jwks messages.JWKS, replicas int) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	data, err := json.Marshal(jwks)
	if err != nil {
		return fmt.Errorf("publish jwks: encode: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      messages.BucketKeys,
		Description: "sensorhub auth public keys (JWKS)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return fmt.Errorf("publish jwks: bucket %s: %w", messages.BucketKeys, err)
	}
	if _, err := kv.Put(ctx, messages.KeyJWKS, data); err != nil {
		return fmt.Errorf("publish jwks: put %s: %w", messages.KeyJWKS, err)
	}
	return nil
}
