package httpbridge

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/assert"
)

// srcHeader is the header Fly's proxy adds to a replayed request.
const srcHeader = HeaderReplaySrc

// decideCases are requests refused on node "self" (MaxHops 2), and what
// Decide must answer; header holds key, value pairs.
var decideCases = []struct {
	name    string
	header  []string // key, value pairs
	length  int64
	refusal error
	verdict Verdict
	reason  Reason
	hops    int
}{
	{name: "first refusal", refusal: notPrimary("node-a"), verdict: Replay, reason: ReasonRefused},
	{name: "replayed once by another node", header: []string{srcHeader, "instance=node-c;region=ord;t=1700000000000000;state=litefs-hops:1"}, refusal: notPrimary("node-a"), verdict: Replay, reason: ReasonRefused, hops: 1},
	{name: "hop limit reached", header: []string{srcHeader, "instance=node-c;state=litefs-hops:2"}, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonLoop, hops: 2},
	{name: "hop count far over", header: []string{srcHeader, "instance=node-c;state=litefs-hops:99999999999999999999999"}, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonLoop, hops: maxHopCount},
	{name: "back to the sender", header: []string{srcHeader, "instance=node-a;state=litefs-hops:1"}, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonLoop, hops: 1},
	{name: "to itself", refusal: notPrimary("self"), verdict: Reject, reason: ReasonLoop},
	{name: "quoted fields", header: []string{srcHeader, `instance="node-a"; state="litefs-hops:1"`}, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonLoop, hops: 1},
	{name: "upper-case keys", header: []string{srcHeader, "INSTANCE=node-a;State=litefs-hops:1"}, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonLoop, hops: 1},
	{name: "someone else's state counts one hop", header: []string{srcHeader, "instance=node-c;state=checkout-42"}, refusal: notPrimary("node-a"), verdict: Replay, reason: ReasonRefused, hops: 1},
	{name: "no state counts one hop", header: []string{srcHeader, "instance=node-c"}, refusal: notPrimary("node-a"), verdict: Replay, reason: ReasonRefused, hops: 1},
	{name: "garbage header counts one hop", header: []string{srcHeader, ";;==;\x00\xff;state=litefs-hops:-1;state"}, refusal: notPrimary("node-a"), verdict: Replay, reason: ReasonRefused, hops: 1},
	{name: "empty header counts one hop", header: []string{srcHeader, ""}, refusal: notPrimary("node-a"), verdict: Replay, reason: ReasonRefused, hops: 1},
	{name: "several headers: the most hops", header: []string{srcHeader, "instance=x;state=litefs-hops:1", srcHeader, "instance=y;state=litefs-hops:2"}, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonLoop, hops: 2},
	{name: "several headers: any sender", header: []string{srcHeader, "instance=x", srcHeader, "instance=node-a"}, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonLoop, hops: 1},
	{name: "replay failed", header: []string{"Fly-Replay-Failed", "reason=timeout"}, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonReplayFailed},
	{name: "no primary", refusal: errNoPrimary, verdict: Reject, reason: ReasonNoPrimary},
	{name: "empty primary ID", refusal: notPrimary(""), verdict: Reject, reason: ReasonNoPrimary},
	{name: "primary ID that would inject fields", refusal: notPrimary("node-a;fallback=force_self"), verdict: Reject, reason: ReasonNoPrimary},
	{name: "body at the limit", length: DefaultMaxReplayBody, refusal: notPrimary("node-a"), verdict: Replay, reason: ReasonRefused},
	{name: "body over the limit", length: DefaultMaxReplayBody + 1, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonTooLarge},
	{name: "body of unknown length", length: -1, refusal: notPrimary("node-a"), verdict: Replay, reason: ReasonRefused},
	{name: "loop beats size", header: []string{srcHeader, "instance=node-a"}, length: DefaultMaxReplayBody + 1, refusal: notPrimary("node-a"), verdict: Reject, reason: ReasonLoop, hops: 1},
}

func TestDecide(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{InstanceID: "self", MaxHops: 2, RetryAfter: 3 * time.Second})
	for _, tc := range decideCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.ContentLength = tc.length
			for i := 0; i+1 < len(tc.header); i += 2 {
				r.Header.Add(tc.header[i], tc.header[i+1])
			}
			d := b.Decide(r, tc.refusal)
			assert.Equal(t, tc.verdict, d.Verdict, "Verdict")
			assert.Equal(t, tc.reason, d.Reason, "Reason")
			assert.Equal(t, tc.hops, d.Hops, "Hops")
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
		assert.Zero(t, b.Decide(httptest.NewRequest(http.MethodPost, "/", nil), err), "Decide(%v)", err)
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
		{name: "plain", want: "instance=node-a;state=litefs-hops:1"},
		{name: "second hop", hops: 1, want: "instance=node-a;state=litefs-hops:2"},
		{name: "timeout", timeout: 2 * time.Second, want: "instance=node-a;state=litefs-hops:1;timeout=2000ms"},
		{name: "sub-millisecond timeout", timeout: time.Microsecond, want: "instance=node-a;state=litefs-hops:1;timeout=1ms"},
		{name: "fallback", fallback: "prefer_self", want: "instance=node-a;state=litefs-hops:1;fallback=prefer_self"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, replayValue("node-a", tc.hops, tc.timeout, tc.fallback))
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
	assert.Equal(t, "instance=node-a;state=litefs-hops:2;timeout=800ms;fallback=force_self", w.Header().Get("Fly-Replay"), "Fly-Replay")
}

func TestReasonAndVerdictStrings(t *testing.T) {
	t.Parallel()
	for r := Reason(0); r <= numReasons; r++ {
		assert.NotEmpty(t, r.String(), "Reason(%d).String()", r)
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
		"state=litefs-hops:3.NONCE",
		"state=litefs-hops:.x",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		src := parseReplaySource(v)
		assert.GreaterOrEqual(t, src.hops, 0, "hops")
		assert.LessOrEqual(t, src.hops, maxHopCount, "hops")
		assert.Contains(t, v, src.instance, "instance")
		assert.Contains(t, v, src.nonce, "nonce")
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
			assert.NotEqual(t, "self", d.Primary, "replay to this node")
			assert.True(t, litefs.ValidPrimaryID(d.Primary), "replay to invalid primary %q", d.Primary)
			assert.Less(t, d.Hops, 2, "replay after too many hops")
			v := replayValue(d.Primary, d.Hops, 0, "")
			assert.Equal(t, d.Hops+1, parseReplaySource(v).hops, "state round trip")
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
			assert.Equal(t, primary, got.instance, "replay's instance")
			assert.True(t, litefs.ValidPrimaryID(got.instance), "replay to invalid primary %q", got.instance)
			assert.NotEqual(t, "self", got.instance, "replay to this node")
			assert.Contains(t, []int{1, 2}, got.hops, "replay's hops")
		case http.StatusServiceUnavailable, http.StatusRequestEntityTooLarge:
		default:
			assert.Fail(t, "unexpected status", "got %v, want 409, 413 or 503", w.Code)
		}
	})
}
