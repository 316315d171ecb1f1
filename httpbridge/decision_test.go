package httpbridge

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/assert"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{InstanceID: "self", MaxHops: 2, RetryAfter: 3 * time.Second})
	const src = "Fly-Replay-Src"
	tests := []struct {
		name    string
		header  []string // key, value pairs
		length  int64
		refusal error
		verdict Verdict
		reason  Reason
		hops    int
	}{
		{"first refusal", nil, 0, notPrimary("node-a"), Replay, ReasonRefused, 0},
		{"replayed once by another node", []string{src, "instance=node-c;region=ord;t=1700000000000000;state=litefs-hops:1"}, 0, notPrimary("node-a"), Replay, ReasonRefused, 1},
		{"hop limit reached", []string{src, "instance=node-c;state=litefs-hops:2"}, 0, notPrimary("node-a"), Reject, ReasonLoop, 2},
		{"hop count far over", []string{src, "instance=node-c;state=litefs-hops:99999999999999999999999"}, 0, notPrimary("node-a"), Reject, ReasonLoop, maxHopCount},
		{"back to the sender", []string{src, "instance=node-a;state=litefs-hops:1"}, 0, notPrimary("node-a"), Reject, ReasonLoop, 1},
		{"to itself", nil, 0, notPrimary("self"), Reject, ReasonLoop, 0},
		{"quoted fields", []string{src, `instance="node-a"; state="litefs-hops:1"`}, 0, notPrimary("node-a"), Reject, ReasonLoop, 1},
		{"upper-case keys", []string{src, "INSTANCE=node-a;State=litefs-hops:1"}, 0, notPrimary("node-a"), Reject, ReasonLoop, 1},
		{"someone else's state counts one hop", []string{src, "instance=node-c;state=checkout-42"}, 0, notPrimary("node-a"), Replay, ReasonRefused, 1},
		{"no state counts one hop", []string{src, "instance=node-c"}, 0, notPrimary("node-a"), Replay, ReasonRefused, 1},
		{"garbage header counts one hop", []string{src, ";;==;\x00\xff;state=litefs-hops:-1;state"}, 0, notPrimary("node-a"), Replay, ReasonRefused, 1},
		{"empty header counts one hop", []string{src, ""}, 0, notPrimary("node-a"), Replay, ReasonRefused, 1},
		{"several headers: the most hops", []string{src, "instance=x;state=litefs-hops:1", src, "instance=y;state=litefs-hops:2"}, 0, notPrimary("node-a"), Reject, ReasonLoop, 2},
		{"several headers: any sender", []string{src, "instance=x", src, "instance=node-a"}, 0, notPrimary("node-a"), Reject, ReasonLoop, 1},
		{"replay failed", []string{"Fly-Replay-Failed", "reason=timeout"}, 0, notPrimary("node-a"), Reject, ReasonReplayFailed, 0},
		{"no primary", nil, 0, errNoPrimary, Reject, ReasonNoPrimary, 0},
		{"empty primary ID", nil, 0, notPrimary(""), Reject, ReasonNoPrimary, 0},
		{"primary ID that would inject fields", nil, 0, notPrimary("node-a;fallback=force_self"), Reject, ReasonNoPrimary, 0},
		{"body at the limit", nil, DefaultMaxReplayBody, notPrimary("node-a"), Replay, ReasonRefused, 0},
		{"body over the limit", nil, DefaultMaxReplayBody + 1, notPrimary("node-a"), Reject, ReasonTooLarge, 0},
		{"body of unknown length", nil, -1, notPrimary("node-a"), Replay, ReasonRefused, 0},
		{"loop beats size", []string{src, "instance=node-a"}, DefaultMaxReplayBody + 1, notPrimary("node-a"), Reject, ReasonLoop, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.ContentLength = tc.length
			for i := 0; i+1 < len(tc.header); i += 2 {
				r.Header.Add(tc.header[i], tc.header[i+1])
			}
			d := b.Decide(r, tc.refusal)
			if d.Verdict != tc.verdict || d.Reason != tc.reason || d.Hops != tc.hops {
				t.Errorf("got %v/%v/%d hops, want %v/%v/%d hops", d.Verdict, d.Reason, d.Hops, tc.verdict, tc.reason, tc.hops)
			}
			assert.Equal(t, tc.refusal, d.Err, "Err")
			assert.Equal(t, "self", d.Self, "Self")
			switch d.Reason {
			case ReasonNoPrimary, ReasonLoop, ReasonReplayFailed:
				assert.Equal(t, 3*time.Second, d.RetryAfter, "RetryAfter")
			case ReasonTooLarge:
				assert.Equal(t, int64(DefaultMaxReplayBody), d.MaxBody, "MaxBody")
			}
		})
	}
}

func TestDecideNonRefusal(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{})
	for _, err := range []error{nil, errors.New("disk I/O error"), litefs.ErrReadOnlyTx} {
		if got := b.Decide(httptest.NewRequest(http.MethodPost, "/", nil), err); got != (Decision{}) {
			t.Errorf("Decide(%v): got %+v, want the zero Decision", err, got)
		}
	}
}

func TestReplayValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		hops     int
		timeout  time.Duration
		fallback string
		want     string
	}{
		{"plain", 0, 0, "", "instance=node-a;state=litefs-hops:1"},
		{"second hop", 1, 0, "", "instance=node-a;state=litefs-hops:2"},
		{"timeout", 0, 2 * time.Second, "", "instance=node-a;state=litefs-hops:1;timeout=2000ms"},
		{"sub-millisecond timeout", 0, time.Microsecond, "", "instance=node-a;state=litefs-hops:1;timeout=1ms"},
		{"fallback", 0, 0, "prefer_self", "instance=node-a;state=litefs-hops:1;fallback=prefer_self"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := replayValue("node-a", tc.hops, tc.timeout, tc.fallback); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReplayFields(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{ReplayStatus: http.StatusOK, ReplayTimeout: 800 * time.Millisecond, ReplayFallback: "force_self"})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
	}))
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Fly-Replay-Src", "instance=node-c;state=litefs-hops:1")
	w := serve(h, r)
	assert.Equal(t, http.StatusOK, w.Code, "status")
	if got, want := w.Header().Get("Fly-Replay"), "instance=node-a;state=litefs-hops:2;timeout=800ms;fallback=force_self"; got != want {
		t.Errorf("Fly-Replay: got %q, want %q", got, want)
	}
}

func TestReasonAndVerdictStrings(t *testing.T) {
	t.Parallel()
	for r := Reason(0); r <= numReasons; r++ {
		if s := r.String(); s == "" {
			t.Errorf("Reason(%d).String(): got empty", r)
		}
	}
	assert.Equal(t, "too late", ReasonTooLate.String())
	assert.Equal(t, "Verdict(9)", Verdict(9).String())
}

func FuzzParseReplaySource(f *testing.F) {
	for _, s := range []string{
		"instance=abc;region=ord;t=1700000000000000;state=litefs-hops:1",
		`instance="abc";state="litefs-hops:7"`,
		"state=litefs-hops:99999999999999999999",
		";;=;==;\"",
		"state=litefs-hops:",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		src := parseReplaySource(v)
		if src.hops < 0 || src.hops > maxHopCount {
			t.Errorf("hops: got %d, want 0..%d", src.hops, maxHopCount)
		}
		if !strings.Contains(v, src.instance) {
			t.Errorf("instance %q is not part of %q", src.instance, v)
		}
	})
}

func FuzzDecide(f *testing.F) {
	f.Add("instance=node-a;state=litefs-hops:1", "", "node-a", int64(10))
	f.Add("garbage", "x", "", int64(-1))
	f.Add("", "", "self", int64(2_000_000))
	b := newBridge(f, Config{InstanceID: "self"})
	f.Fuzz(func(t *testing.T, src, failed, primary string, length int64) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if src != "" {
			r.Header.Set("Fly-Replay-Src", src)
		}
		if failed != "" {
			r.Header.Set("Fly-Replay-Failed", failed)
		}
		r.ContentLength = length
		d := b.Decide(r, &litefs.NotPrimaryError{PrimaryID: primary})
		if d.Verdict == Replay {
			if d.Primary == "" || d.Primary == "self" || !litefs.ValidPrimaryID(d.Primary) || d.Hops >= 2 {
				t.Errorf("replay to %q after %d hops", d.Primary, d.Hops)
			}
			v := replayValue(d.Primary, d.Hops, 0, "")
			if got := parseReplaySource(v).hops; got != d.Hops+1 {
				t.Errorf("state round trip: got %d hops, want %d", got, d.Hops+1)
			}
		}
	})
}

// FuzzHandler sends a refused request with arbitrary replay headers and
// primary ID through the whole Handler: it must answer with a replay to a
// valid primary, or a rejection, and never panic.
func FuzzHandler(f *testing.F) {
	f.Add("instance=node-a;state=litefs-hops:1", "", "node-a", int64(10))
	f.Add("state=litefs-hops:x", "y", "a;b=c", int64(-1))
	f.Add("", "", "self", int64(2_000_000))
	b := newBridge(f, Config{PrimaryWait: -1})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		litefs.TrackerFrom(r.Context()).ReportRefusal(&litefs.NotPrimaryError{PrimaryID: r.Header.Get("X-Primary")})
		w.WriteHeader(http.StatusInternalServerError)
	}))
	f.Fuzz(func(t *testing.T, src, failed, primary string, length int64) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header["Fly-Replay-Src"] = []string{src}
		if failed != "" {
			r.Header["Fly-Replay-Failed"] = []string{failed}
		}
		r.Header["X-Primary"] = []string{primary}
		r.ContentLength = length
		w := serve(h, r)
		switch w.Code {
		case http.StatusConflict:
			got := parseReplaySource(w.Header().Get("Fly-Replay"))
			if got.instance != primary || !litefs.ValidPrimaryID(got.instance) || got.instance == "self" || got.hops < 1 || got.hops > 2 {
				t.Errorf("replay %q for primary %q", w.Header().Get("Fly-Replay"), primary)
			}
		case http.StatusServiceUnavailable, http.StatusRequestEntityTooLarge:
		default:
			t.Errorf("status: got %v, want 409, 413 or 503", w.Code)
		}
	})
}
