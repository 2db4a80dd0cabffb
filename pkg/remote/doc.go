// Package remote is what the bridge's clients of remote services share: the
// policy and the one loop by which a failed call is repeated (capped
// exponential backoff with full jitter, the server's Retry-After, the
// caller's deadline), the rule for the URLs they call, the HTTP client they
// call with, and the error of a call that got no reply. The Tableau, dbt
// Cloud and Slack clients build on it; so do the state table's completion
// writes in package refresh. Each client keeps its own rules for which
// failures are safe to repeat (only it knows whether a request queues a
// refresh or starts a dbt run) and for decoding replies.
//
// Where the clients used to differ, this package decides, once:
//
//	question                               decision                                       why
//	--------------------------------------------------------------------------------------------------------------------------
//	Retry-After longer than MaxDelay       stop retrying; return the error, which         every caller has a slower retry of its own
//	                                       carries the wait                               (dbt redelivers, the follow-ups run every
//	                                                                                      five minutes); a Lambda must not sleep for it
//	a wait that would pass the deadline    stop now and return the real error            the caller can still act on it (reply 503,
//	                                                                                      record state) before it is cut off
//	BaseDelay of zero                      invalid                                        a throttled client would retry in a hot loop
//	TLS: certificate not trusted, wrong    permanent: never retried, "not sent"           it will not verify next time either; nothing
//	host name                                                                             reached the server
//	TLS: handshake timeout or reset        transient; not sent                            a blip, and no request left this host
//	redirects                              refused; the reply is the 3xx, with            a redirect would carry a token (X-Tableau-Auth,
//	                                       its Location                                   the dbt token, the Slack URL) to another host
//	timeout of one attempt                 30 s for every client (DefaultTimeout)         the caller's context is the real bound; this
//	                                                                                      only ends an attempt that hangs without one
//	idle connections per host              32                                             a run refreshes many items on one host at once
//	http:// URLs                           only for loopback hosts                        tokens never cross a network in clear;
//	                                                                                      simulators and local runs are on loopback
//
// Errors of this package never quote a URL's path or query: the Slack
// webhook URL is itself a credential, and the Tableau webhook route carries
// a secret token.
package remote
