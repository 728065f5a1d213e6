package supervise

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// NewSystem returns an actor system that logs through logger (protoactor's
// default writes coloured text to stderr, and it can only be set here).
// protoactor's own chatter goes out at WARN and above only.
func NewSystem(logger *slog.Logger) *actor.ActorSystem {
	if logger == nil {
		logger = slog.Default()
	}
	quiet := slog.New(levelFilter{Handler: logger.Handler(), min: slog.LevelWarn}).With("lib", "protoactor")
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
}
