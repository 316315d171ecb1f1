// Package httpbridge is net/http middleware that sends a request to the
// LiteFS primary when the litefs driver refused one of its writes on a
// replica. On Fly.io it answers with a fly-replay response, so Fly's proxy
// replays the request on the primary; no route needs to be marked as a
// writer.
//
// # Use
//
// Wrap the handler, and pass r.Context() to every database call:
//
//	http.ListenAndServe(":8080", httpbridge.Middleware(mux))
//
// With go-chi/chi, gorilla/mux or any router taking
// func(http.Handler) http.Handler:
//
//	r := chi.NewRouter()
//	r.Use(httpbridge.Middleware)
//
// Echo's WrapMiddleware calls the middleware it wraps on every request, so
// build the Bridge once and pass its Handler method:
//
//	b, err := httpbridge.New(httpbridge.Config{})
//	...
//	e.Use(echo.WrapMiddleware(b.Handler))
//
// [New] takes a [Config] for everything else; [Bridge.Handler] is then the
// middleware, and [Bridge.Decide] the decision it applies, on its own.
// [MiddlewareFor] is Middleware with read-your-writes on for a database.
//
// # How a refusal reaches the bridge
//
// The bridge attaches a [litefs.Tracker] to each request's context, and the
// driver reports to it every write it refuses. So a handler may:
//
//   - return an error response of its own (a 500, say): the bridge learns of
//     the refusal from the Tracker and replaces the response;
//   - panic with the error (errors.Is(err, litefs.ErrNotPrimary)): the bridge
//     recovers it; every other panic, http.ErrAbortHandler included, goes on
//     unchanged;
//   - ask first, before a side effect that must not happen on a replica
//     (sending mail, charging a card), with [RequirePrimary], and return.
//
// # The response
//
// A replay is an empty response with status 409 Conflict (Config.ReplayStatus)
// and the header
//
//	Fly-Replay: instance=<primary ID>;state=litefs-hops:<n>
//
// Fly's proxy ignores the status; 409 is there for a client that gets the
// response without a Fly proxy in front, which must not take it for the
// success LiteFS's proxy's 200 would suggest. Whatever the handler had set,
// status, headers and body, is dropped, including headers set by middleware
// outside the bridge.
//
// When the request cannot go to the primary, the client gets 503 Service
// Unavailable with Retry-After, or 413 Content Too Large for a body over
// fly-replay's limit (Config.Reject changes this).
//
// # When the response starts
//
// A response can only be replaced, or given a cookie, before any of it is
// sent. The bridge holds back the status line and headers until the handler
// writes a body byte, flushes, hijacks the connection, sends a 1xx response,
// or returns. If by then a write was refused, the handler's response is
// dropped and the bridge answers
// instead. So a refusal is replayable whenever it comes before the first
// body byte.
//
// Once the bridge is dropping the handler's output, Write, WriteString,
// ReadFrom and Flush (through http.ResponseController) return
// [ErrResponseDropped], and so does Hijack: a handler that streams (io.Copy
// from a file or a query) stops at its first write instead of producing
// output that goes nowhere. A handler that ignores write errors is
// unaffected.
//
// Flushing before any body byte sends the headers: the handler has asked for
// them to go out (a stream starting), and that commits the response. A
// refusal after the response started is logged at level Error, counted
// (ReasonTooLate) and reported to Config.OnEvent, and the response stands; if
// the refusal was a panic, the response is aborted so the client cannot take
// it for complete.
//
// A request that had committed a write here before one was refused (the
// node was demoted in between) is never replayed: the primary would repeat
// the write that committed. Its response stands, or, if the bridge had
// dropped it or the handler panicked, becomes a 500; it is reported with
// ReasonPartial and logged at level Error.
//
// The wrapped ResponseWriter has Flush and Hijack where the underlying one
// (or one it unwraps to) has them, and Unwrap, so http.ResponseController
// works through it; io.Copy and io.WriteString into it keep their fast
// paths.
//
// # Loops and hops
//
// A replayed request carries Fly-Replay-Src. The bridge never replays a
// request to the node it came from, nor to itself (Config.InstanceID,
// $FLY_MACHINE_ID or the host name by default), and counts replays in the
// state= field: a request that has made Config.MaxHops replays is rejected.
// A request that came back with Fly-Replay-Failed is rejected too.
//
// # No primary
//
// When no primary is known (LiteFS is electing, or lost its primary), the
// bridge waits up to Config.PrimaryWait (5 s) for one, with
// litefs.WaitPrimary, then replays the request there, or answers 503.
//
// # Large bodies
//
// Fly replays requests with bodies up to 1 MB. Above Config.MaxReplayBody the
// bridge answers 413, unless Config.Forward names a [Forwarder], which sends
// the request to the primary itself; the bridge then keeps a copy of the
// body as the handler reads it, so it can be sent again. The copy costs about
// the bytes read (it never grows by doubling) and is dropped past the
// Forwarder's MaxBody, which the 413 then names; a body whose Content-Length
// is already over that bound is not copied at all, and goes to the primary
// only if the handler left it unread.
//
// # Read-your-writes
//
// A replica applies a transaction a little after the primary commits it, so
// a client that writes and then reads at once may be served by a replica
// that has not seen its write yet. Given the database (Config.DB, or
// [MiddlewareFor]), the bridge does in process what LiteFS's proxy does
// against this; without it, read-your-writes is off:
//
//	http.ListenAndServe(":8080", httpbridge.MiddlewareFor(db)(mux))
//
// After a request commits a write through the litefs driver (with
// r.Context(), so its Tracker hears of it), the response sets a cookie
// naming the transaction reached:
//
//	Set-Cookie: __txid=00000000000004d2; Path=/; Max-Age=300; HttpOnly; SameSite=Lax
//
// with Secure added when the request came over TLS or with
// X-Forwarded-Proto: https (as behind Fly's edge). Config.TXIDCookie and
// Config.TXIDMaxAge change the name and the lifetime (5 minutes). The value
// has the form LiteFS's proxy uses, so either can read the cookie the other
// set. The bridge takes the TXID when the response starts ("When the
// response starts", above), from the read of LiteFS's <db>-pos that each
// commit began in its commit hook (litefs.Tracker.PrefetchTXID), or from one
// read then: a write committed after that, in a streamed
// response or a hijacked connection, gets no cookie, which is logged at
// level Debug. A response replaced by a replay or a rejection gets none:
// its write did not happen here. (A request that committed a write here and
// then had another refused, the node demoted in between, is never replayed,
// which would repeat the first write: its response stands, it is reported
// with ReasonPartial, and it gets the cookie.)
//
// A request carrying the cookie on a replica that has not applied that
// transaction waits until it has, up to Config.TXIDWait (1 s), and is then
// served here. When the wait runs out, the replica is taken for stalled and
// the request goes to the primary, which has every transaction: a
// fly-replay (or Config.Replay) under the rules of "Loops and hops" above,
// reported as an [Event] with ReasonBehind. Where those rules keep it here
// (no primary is known, it came from the primary, it has used its hops, its
// body is too large for fly-replay or of unknown size), it is served here,
// possibly without its write, and reported with Verdict Keep: a read
// slightly stale beats an error page. The primary never waits. A request
// whose method is not safe (POST, PUT, PATCH, DELETE: anything but GET,
// HEAD, OPTIONS and TRACE) does not wait either when it can go to the
// primary: it most likely writes, which this replica would refuse after the
// wait anyway, so it is sent at once, as LiteFS's proxy sends it.
//
// The bridge remembers the highest TXID this node is known to have applied,
// so a request without the cookie, or with one at or below that TXID, costs
// a look at its Cookie header and no I/O. A cookie above the position
// LiteFS's event stream shows (litefs.TXIDHint) takes the node for behind
// with no I/O: the stream may trail the node, so at worst a request it
// could have served goes to the primary or waits for the stream. A cookie
// the stream has reached costs one read of <db>-pos (a file the driver
// keeps open, 90-500 µs over FUSE) before the node serves it. A node
// behind gets a check of its role (from memory with the stream), and on a
// replica a wait on litefs.WaitTXID, which one watcher per node serves for
// all its waiters. A cookie whose value
// is not 16 hex digits is ignored, at no allocation. A forged one naming a
// transaction to come costs at most Config.TXIDWait and a replay; when too
// many requests wait on this node already (litefs.ErrTooManyWaiters), it is
// replayed at once.
//
// Like LiteFS's proxy, read-your-writes follows one database: the cookie
// names Config.DB's last transaction written by the request
// (litefs.Tracker.TXIDOf), and a replica compares it with Config.DB's
// position. A request that wrote only other databases sets no cookie (but
// for one that wrote a database attached to a connection, which the driver
// cannot tell apart: it may get a cookie naming a transaction Config.DB
// has, never one to come).
// Config.Position replaces the database as the source of this node's
// position ([Position]); the cookie then names the transaction of the
// database the request wrote last.
//
// # Other deployments
//
// Config.Replay replaces fly-replay: a [Forwarder] proxies every refused
// request to the primary in-process, and a [ReplayerFunc] does anything else
// with the [Decision].
//
// Two words keep one meaning each in this package. To replay a request is
// to hand it to Config.Replay (a [Replayer]) for the primary: the Verdict
// Replay, the Replayer's Replay method and Config.MaxReplayBody all mean
// that, whatever the Replayer does. The Config fields ReplayStatus,
// ReplayTimeout and ReplayFallback, and the Header constants, belong to
// the default Replayer, the fly-replay response, and do nothing for
// another. To forward is to hand the request to Config.Forward, for the
// bodies over MaxReplayBody (the Verdict Forward).
//
// # Off Fly.io
//
// Without Fly's proxy nothing follows a fly-replay response, so the node
// whose write was refused forwards the request itself: make Config.Replay a
// [Forwarder]. Any load balancer (nginx, Caddy, a Kubernetes Service) may
// then send any request to any node:
//
//	client ──▶ load balancer ──▶ any node ──(write refused: forward)──▶ primary
//	       ◀──────────────────── the primary's response ◀──────────────────┘
//
// The Forwarder turns the primary's ID (LiteFS's lease hostname, as
// .primary shows it) into the base URL of the primary's app, in one of three
// ways:
//
//   - ForwardConfig.URL, a template: "http://{primary}:8080" for Docker
//     Compose service names or VM host names,
//     "http://{primary}.posts:8080" for a Kubernetes StatefulSet whose pods
//     are named through a headless Service "posts",
//     "http://{primary}.vm.{app}.internal:8080" on Fly.io;
//   - ForwardConfig.Primaries, a map from ID to base URL, where names do not
//     resolve;
//   - ForwardConfig.Resolve, a function, for anything else.
//
// For example:
//
//	fwd, err := httpbridge.NewForwarder(httpbridge.ForwardConfig{URL: "http://{primary}.posts:8080"})
//	...
//	b, err := httpbridge.New(httpbridge.Config{DB: db, Replay: fwd})
//
// The ID is looked up on every forwarded request, so when the primary moves
// (a Consul lease changing hands, or a static lease restarted with another
// candidate) forwarding follows it with no change to the app.
//
// The client gets the primary's response: status, headers, cookies and
// body, streamed as the primary flushes it (Server-Sent Events pass
// through). The read-your-writes cookie comes with it, so the client's next
// read waits on whichever replica serves it until that replica has the
// write.
//
// A forwarded request carries a Fly-Replay-Src value per node it passed
// through, so it is never sent back to any of them, and goes at most
// Config.MaxHops hops. An address that leads back to the sending node (a
// template or map naming this node for the primary) is answered 503 with
// Retry-After and logged at level Error, on its first return. The value a
// Forwarder adds ends its state= with a random nonce drawn once per
// process ("litefs-hops:1.<nonce>"), and only a value with this process's
// nonce counts as having come back: a client that sends a Fly-Replay-Src
// naming the node it talks to (node IDs are not secret) gets its request
// forwarded as one more hop, not a 503 and a false alarm in the log.
//
// When the primary cannot be reached the client gets 502 Bad Gateway; when
// it does not answer within ForwardConfig.Timeout (30 s, or nine tenths of
// the server's WriteTimeout if shorter), 504 Gateway Timeout. Both carry
// Retry-After only when nothing of the request was sent: the client still
// has its body and the write did not happen, so sending it again is safe.
// Without Retry-After the write may have happened.
//
// The client's X-Forwarded-For, -Host and -Proto are not passed to the
// primary unless ForwardConfig.TrustForwarded says the request came from a
// proxy you trust ([TrustPeers] for the load balancer's networks); the
// primary otherwise gets what httputil.ReverseProxy's SetXForwarded sets.
//
// Against fly-replay: each write that reaches a replica costs one more hop
// inside the cluster, and the replica holds the client's connection, a
// goroutine and a copy of the body (up to ForwardConfig.MaxBody, 16 MiB)
// while the primary answers; in exchange bodies up to that bound can be
// forwarded (fly-replay: 1 MB), and nothing depends on Fly.io. Reads are
// served where they land, as before.
//
// # Observing
//
// Config.Logger gets a record for each refused write (Debug when replayed,
// Warn when rejected, Error when too late); Config.OnEvent gets an [Event];
// [Bridge.Count] counts them by [Reason].
//
// [Bridge.StatusHandler] serves this node's state as JSON ([Status]): its
// role and primary, the TXID it has reached, its replication lag, and the
// counts by reason. It answers 503 when no primary is known or the lag is
// over Config.MaxLag (10 s, as LiteFS's /litefs/health), so it can be Fly's
// health check:
//
//	mux.Handle("GET /healthz", b.StatusHandler())
//
// The library has no metrics dependency; the counts go to any metrics
// library in a few lines. With Prometheus's client_golang, a counter per
// reason and verdict, fed by OnEvent:
//
//	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
//		Name: "httpbridge_refused_writes_total",
//		Help: "Refused writes the bridge handled.",
//	}, []string{"reason", "verdict"})
//	prometheus.MustRegister(refused)
//	b, err := httpbridge.New(httpbridge.Config{OnEvent: func(e httpbridge.Event) {
//		refused.WithLabelValues(e.Reason.String(), e.Verdict.String()).Inc()
//	}})
//
// With OpenTelemetry, an observable counter that reads [Bridge.Count] at
// each collection:
//
//	meter.Int64ObservableCounter("httpbridge.refused_writes",
//		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
//			for _, r := range httpbridge.Reasons() {
//				o.Observe(int64(b.Count(r)), metric.WithAttributes(attribute.String("reason", r.String())))
//			}
//			return nil
//		}))
package httpbridge
