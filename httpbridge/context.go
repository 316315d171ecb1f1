package httpbridge

import (
	"context"

	"github.com/litefs-sql/litefs"
)

// trackerContext is a request's context holding its litefs.Tracker. It
// answers for the Tracker itself, where litefs.WithTracker would allocate a
// context of its own: one allocation less on every request.
type trackerContext struct {
	context.Context
	key     any // the key litefs.TrackerFrom asks for
	tracker litefs.Tracker
}

func (c *trackerContext) Value(key any) any {
	if key == c.key {
		return &c.tracker
	}
	return c.Context.Value(key)
}

// keySniffer records the key it is asked for.
type keySniffer struct {
	context.Context
	key any
}

func (s *keySniffer) Value(key any) any {
	s.key = key
	return nil
}

// trackerKey learns the key under which litefs.TrackerFrom looks a Tracker
// up, and reports whether a trackerContext using it is found by
// litefs.TrackerFrom. When it is not (litefs changed how it stores Trackers),
// the bridge falls back to litefs.WithTracker.
func trackerKey() (any, bool) {
	s := &keySniffer{Context: context.Background()}
	litefs.TrackerFrom(s)
	if s.key == nil {
		return nil, false
	}
	probe := &trackerContext{Context: context.Background(), key: s.key}
	return s.key, litefs.TrackerFrom(probe) == &probe.tracker
}
