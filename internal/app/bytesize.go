package app

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes that reads like GOMEMLIMIT: an integer with an
// optional unit B, KiB, MiB or GiB ("256MiB"). It is a flag.Value.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
	{"B", 1},
}

// Set parses s.
func (b *ByteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, factor = strings.TrimSpace(n), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return errors.New("want a size such as 268435456, 256MiB or 1GiB")
	case n < 0:
		return errors.New("a size cannot be negative")
	case n > math.MaxInt64/factor:
		return errors.New("size too large")
	}
	*b = ByteSize(n * factor)
	return nil
}

// String writes the size with the largest unit that divides it.
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range byteUnits {
		if int64(b)%u.factor == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.factor, u.suffix)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
