package litefs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kinds of event on LiteFS's GET /events stream (one JSON object a line).
const (
	eventInit          = "init"          // on connect: this node's role
	eventPrimaryChange = "primaryChange" // the lease changed hands
	eventTx            = "tx"            // a transaction was applied to a database
)

// maxEventLine bounds one line of the stream; LiteFS's lines are about 200
// bytes, so a longer one is not LiteFS's.
const maxEventLine = 4096

// event is one line of the stream, reduced to what the driver uses. For
// init and primaryChange, primary says whether this node holds the lease
// and primaryID names the primary elsewhere ("" when none is known); for tx,
// db names the database and txid is the transaction applied.
type event struct {
	kind      string
	primary   bool
	primaryID string
	db        string
	txid      TXID
}

var errEventLine = errors.New("litefs: invalid LiteFS event")

// parseEvent parses one line of the stream. Kinds the driver does not use
// parse with only kind set; anything malformed is an error, so that a
// stream that is not LiteFS's is not trusted.
func parseEvent(line []byte) (event, error) {
	if len(line) > maxEventLine {
		return event{}, fmt.Errorf("%w: a line of %d bytes", errEventLine, len(line))
	}
	var raw struct {
		Type string          `json:"type"`
		DB   string          `json:"db"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(line, &raw); err != nil || raw.Type == "" {
		return event{}, fmt.Errorf("%w: %q", errEventLine, truncate(string(line)))
	}
	ev := event{kind: raw.Type, db: raw.DB}
	switch raw.Type {
	case eventInit, eventPrimaryChange:
		var d struct {
			IsPrimary bool   `json:"isPrimary"`
			Hostname  string `json:"hostname"`
		}
		if err := json.Unmarshal(raw.Data, &d); err != nil {
			return event{}, fmt.Errorf("%w: %s data: %v", errEventLine, raw.Type, err)
		}
		// Off the primary, hostname names the primary, or is empty when
		// none is known; on the primary LiteFS leaves it empty.
		if d.Hostname != "" && !ValidPrimaryID(d.Hostname) {
			return event{}, fmt.Errorf("%w: %s names %q", errEventLine, raw.Type, truncate(d.Hostname))
		}
		ev.primary = d.IsPrimary
		if !d.IsPrimary {
			ev.primaryID = d.Hostname
		}
	case eventTx:
		var d struct {
			TXID string `json:"txID"`
		}
		if err := json.Unmarshal(raw.Data, &d); err != nil || raw.DB == "" {
			return event{}, fmt.Errorf("%w: tx: %q", errEventLine, truncate(string(line)))
		}
		id, err := ParseTXID(d.TXID)
		if err != nil {
			return event{}, fmt.Errorf("%w: %w", errEventLine, err)
		}
		ev.txid = id
	}
	return ev, nil
}

// follow reads one connection of the stream until it ends, fails, or a
// check finds it disagreeing with the mount. trusted reports whether it was
// verified at all.
func (w *watcher) follow() (trusted bool, err error) {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.api+"/events", nil)
	if err != nil {
		return false, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET /events: %s", resp.Status)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 512), maxEventLine)
	if !lines.Scan() {
		return false, fmt.Errorf("GET /events: no init event: %w", lineErr(lines))
	}
	ev, err := parseEvent(lines.Bytes())
	if err == nil && ev.kind != eventInit {
		err = fmt.Errorf("%w: first event is %q, not init", errEventLine, ev.kind)
	}
	if err != nil {
		return false, err
	}
	if err := w.verifyInit(ev); err != nil {
		return false, err
	}
	w.mu.Lock()
	w.unfollow = cancel
	w.mu.Unlock()
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		w.checkLoop(ctx, cancel)
	}()
	// The checks of this connection end before the next one is verified,
	// so that none of them can untrust the next.
	defer func() {
		cancel()
		<-checked
		w.mu.Lock()
		w.unfollow = nil
		w.mu.Unlock()
	}()
	for lines.Scan() {
		ev, err := parseEvent(lines.Bytes())
		if err != nil {
			return true, err
		}
		w.apply(ev)
	}
	return true, lineErr(lines)
}

func lineErr(s *bufio.Scanner) error {
	if err := s.Err(); err != nil {
		return err
	}
	return errors.New("the stream ended")
}

// verifyInit trusts the stream if its init event agrees with the mount.
// Subscribed, every later transaction is an event, so one read of the
// position now makes the stream's positions complete.
func (w *watcher) verifyInit(ev event) error {
	id, err := w.pos.read()
	switch {
	case errors.Is(err, ErrNoPosition):
		id = 0 // no database yet: its first transaction will be an event
	case err != nil:
		return err
	}
	st := stateOf(ev)
	if err := w.agrees(st); err != nil {
		return err
	}
	w.streamTX.Store(uint64(id)) // a new stream: forget the last one's
	w.advance(id)
	w.role.Store(st)
	w.txLive.Store(true)
	return nil
}

// stateOf is the role ev reports; nil when no primary is known.
func stateOf(ev event) *roleState {
	switch {
	case ev.primary:
		return &roleState{primary: true}
	case ev.primaryID != "":
		return &roleState{primaryID: ev.primaryID}
	}
	return nil
}

// apply updates the watcher with one event of a trusted stream.
func (w *watcher) apply(ev event) {
	switch ev.kind {
	case eventPrimaryChange:
		st := stateOf(ev)
		w.role.Store(st)
		w.probe.epoch.saw(st == nil || !st.primary)
	case eventTx:
		if ev.db != w.db || w.db == "" {
			return
		}
		w.raiseStream(ev.txid)
		w.publish(ev.txid)
	}
}

// raiseStream records id, a tx event's TXID, as the stream's position if it
// is higher.
func (w *watcher) raiseStream(id TXID) {
	if uint64(id) > w.streamTX.Load() {
		w.streamTX.Store(uint64(id))
	}
}

// publish raises the known position towards id, a tx event's TXID, but
// never past what <db>-pos shows: the stream is checked against the mount
// only at init and every roleEvery, and another node's stream (a wrong API
// address) must not release a waiter early, nor leave a position this node
// has not applied once it is dropped. It reads <db>-pos, on the stream's
// goroutine, only while someone waits and the event would raise the
// position; a WaitTXID that starts later has the poller read it once.
func (w *watcher) publish(id TXID) {
	if w.nwait.Load() == 0 || uint64(id) <= w.txid.Load() {
		return
	}
	pos, err := w.pos.read()
	if err != nil {
		return
	}
	w.advance(min(id, pos))
}

// agrees reports, as an error, how the mount files disagree with st.
func (w *watcher) agrees(st *roleState) error {
	mount := w.probe.checkMount()
	var np *NotPrimaryError
	switch {
	case st == nil && errors.Is(mount, ErrNoPrimary):
	case st != nil && st.primary && mount == nil:
	case st != nil && !st.primary && errors.As(mount, &np) && np.PrimaryID == st.primaryID:
	default:
		return fmt.Errorf("the stream says %s, the mount %v", describe(st), mountSays(mount))
	}
	return nil
}

func describe(st *roleState) string {
	switch {
	case st == nil:
		return "no primary"
	case st.primary:
		return "primary"
	}
	return "replica of " + st.primaryID
}

func mountSays(err error) string {
	if err == nil {
		return "primary"
	}
	return err.Error()
}

// checkLoop compares the trusted stream with the mount every roleEvery, and
// drops it (cancel) when the roles differ, when its position runs ahead of
// this node's <db>-pos (another node's stream), or when it has not reached
// by now the position read at the previous check (a stalled stream).
func (w *watcher) checkLoop(ctx context.Context, cancel context.CancelFunc) {
	t := time.NewTicker(w.roleEvery)
	defer t.Stop()
	var prev TXID
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.check(&prev); err != nil && ctx.Err() == nil {
			w.log.Warn("litefs: dropping the LiteFS event stream", "api", w.api, "why", err)
			w.untrust()
			cancel()
			return
		}
	}
}

func (w *watcher) check(prev *TXID) error {
	if err := w.agrees(w.role.Load()); err != nil {
		return err
	}
	if w.pos == nil {
		return nil
	}
	seen := TXID(w.streamTX.Load()) // before the read: the position only grows
	id, err := w.pos.read()
	switch {
	case errors.Is(err, ErrNoPosition):
		return nil
	case err != nil:
		return err
	case seen > id:
		return fmt.Errorf("the stream is at TXID %v, this node at %v: another node's stream", seen, id)
	case seen < *prev:
		return fmt.Errorf("the stream is at TXID %v, this node was at %v a check ago: stalled", seen, *prev)
	}
	*prev = id
	w.advance(id)
	return nil
}
