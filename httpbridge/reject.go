package httpbridge

import (
	"net/http"
	"strconv"
	"time"
)

// WriteRejection is the default Config.Reject. It answers 413 Content Too
// Large when the body is over the limit that applied (d.MaxBody: the
// Forwarder's where one takes large bodies, else Config.MaxReplayBody):
// retrying the same request cannot help, and the message names the limit. Otherwise it answers
// 503 Service Unavailable with Retry-After: no primary is known, or sending
// the request on would loop, both of which a later retry may not meet.
func WriteRejection(w http.ResponseWriter, r *http.Request, d Decision) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if d.Reason == ReasonTooLarge {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		w.Write([]byte("httpbridge: this request writes to the database, which only the primary can do, and its body is over " +
			strconv.FormatInt(d.MaxBody, 10) + " bytes, too large to send there\n"))
		return
	}
	if d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((d.RetryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(rejectMessages[d.Reason]))
}

var rejectMessages = [numReasons]string{
	ReasonNoPrimary:    "httpbridge: this request writes to the database and no primary is available; retry later\n",
	ReasonLoop:         "httpbridge: this request writes to the database and could not be sent to the primary without a loop; retry later\n",
	ReasonReplayFailed: "httpbridge: this request writes to the database and the primary could not be reached; retry later\n",
}
