package tableau

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Session is a signed-in Tableau session: the token for X-Tableau-Auth and
// the site and user it belongs to. Token is a credential: a SessionStore
// must keep it as carefully as the PAT secret (encrypted at rest, never
// logged).
type Session struct {
	Token     string
	SiteID    string
	UserID    string
	CreatedAt time.Time
}

func (s *Session) usable() bool { return s != nil && s.Token != "" && s.SiteID != "" }

// SessionStore shares one Tableau session among many Clients, typically
// every concurrent Lambda instance, through a table all of them reach.
//
// It exists because Tableau keeps one session per personal access token:
// signing in with a PAT ends the session that PAT had before. Instances that
// each signed in for themselves would keep ending each other's sessions.
// With a store, an instance first adopts the stored session; only one
// instance at a time (the holder of the sign-in lease) signs in, and the
// others wait for the session it saves.
//
// Implementations must be safe for concurrent use. The project keeps one in
// DynamoDB; NewMemorySessionStore serves tests and single-process use.
type SessionStore interface {
	// Load returns the stored session, or nil, nil when there is none. A
	// Session with an empty Token also counts as none.
	Load(ctx context.Context, key string) (*Session, error)
	// Save stores s under key, replacing what was there. An empty Session
	// (no Token) records that there is no session.
	Save(ctx context.Context, key string, s *Session) error
	// TryLock takes the sign-in lease for key on behalf of owner, for at most
	// ttl, and reports whether it got it. It must not block waiting for the
	// lease, and must grant it once a previous holder's ttl has passed (the
	// holder may have died mid-sign-in). Taking a lease one already holds
	// succeeds and extends it.
	TryLock(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	// Unlock releases the lease if owner holds it, and does nothing otherwise.
	Unlock(ctx context.Context, key, owner string) error
}

// sessionKey names the shared session for one server, site and identity (a
// PAT's name, or a connected app and user). It never includes a secret.
func sessionKey(server, site, identity string) string {
	esc := strings.NewReplacer("%", "%25", "|", "%7C")
	return "tableau-session|" + esc.Replace(server) + "|" + esc.Replace(site) + "|" + esc.Replace(identity)
}

// SessionKey returns the key under which this Client keeps its session in the
// SessionStore, e.g. "tableau-session|https://tableau.example.com|mysite|pat=refresh-bot".
// It is derived from the server URL, the site and the PAT name (or connected
// app and user), never from a secret. It is empty without credentials.
func (c *Client) SessionKey() string {
	_, key := c.auth()
	return key
}

// Site is the content URL of the Client's site ("" for the default site).
func (c *Client) Site() string { return c.site }

// ServerURL is the server the Client talks to.
func (c *Client) ServerURL() string { return c.baseURL.String() }

// SiteID is the LUID of the site the Client's session is signed in to, as
// Tableau's webhooks name it (site_luid); "" before it has a session.
func (c *Client) SiteID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return ""
	}
	return c.sess.SiteID
}

// auth returns the credentials to sign in with and the key of their shared
// session, as they stand now.
func (c *Client) auth() (credentials, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creds, c.storeKey
}

// syncCredentials asks the CredentialsProvider, if any, for the current
// credentials; when they changed, the session of the old ones is dropped.
func (c *Client) syncCredentials(ctx context.Context) error {
	if c.provider == nil {
		return nil
	}
	given, err := c.provider.Credentials(ctx)
	if err != nil {
		return fmt.Errorf("tableau: credentials: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creds != nil && c.given.equal(given) {
		return nil
	}
	cr, err := given.build()
	if err != nil {
		return fmt.Errorf("tableau: credentials: %w", err)
	}
	c.given = given
	if c.creds != nil && cr.same(c.creds) {
		return nil
	}
	c.creds = cr
	c.storeKey = sessionKey(c.baseURL.String(), c.site, cr.identity())
	c.sess = nil
	return nil
}

// session returns the current session, signing in (or adopting a shared
// session) on first need.
func (c *Client) session(ctx context.Context) (*Session, error) {
	if err := c.syncCredentials(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	return c.renew(ctx, "")
}

// renew replaces a session that failed with token failed ("" when there was
// none). Sign-ins are serialised per Client: goroutines that queue behind one
// find the new session and use it instead of signing in again.
func (c *Client) renew(ctx context.Context, failed string) (*Session, error) {
	cr, key := c.auth()
	if cr == nil {
		return nil, ErrNoCredentials
	}
	if err := c.signInMu.lock(ctx); err != nil {
		return nil, fmt.Errorf("tableau: wait for sign-in: %w", err)
	}
	defer c.signInMu.unlock()

	c.mu.Lock()
	cur := c.sess
	c.mu.Unlock()
	if cur != nil && cur.Token != failed {
		return cur, nil
	}
	var (
		s   *Session
		err error
	)
	if c.store == nil {
		s, err = c.signIn(ctx, cr)
	} else {
		s, err = c.renewShared(ctx, failed, cr, key)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	return s, nil
}

// renewShared gets a session through the SessionStore: adopt the stored one
// unless it is the one that just failed; otherwise sign in while holding the
// lease; if another instance holds the lease, wait (bounded, with backoff)
// for the session it will store.
func (c *Client) renewShared(ctx context.Context, failed string, cr credentials, key string) (*Session, error) {
	deadline := time.Now().Add(c.leaseWait)
	poll := c.leasePoll
	for {
		stored, err := c.store.Load(ctx, key)
		if err != nil {
			return nil, &storeError{op: "load", err: err}
		}
		if stored.usable() && stored.Token != failed {
			c.logger.DebugContext(ctx, "tableau adopted shared session", "site_id", stored.SiteID)
			return stored, nil
		}
		ok, err := c.store.TryLock(ctx, key, c.owner, c.leaseTTL)
		if err != nil {
			return nil, &storeError{op: "lock", err: err}
		}
		if ok {
			return c.signInHoldingLease(ctx, failed, cr, key)
		}
		if time.Now().Add(poll).After(deadline) {
			return nil, fmt.Errorf("tableau: another instance has held the sign-in lease for %q for over %s: %w",
				key, c.leaseWait, context.DeadlineExceeded)
		}
		if err := c.sleep(ctx, poll); err != nil {
			return nil, fmt.Errorf("tableau: wait for another instance to sign in: %w", err)
		}
		poll = min(poll*3/2, c.leasePollMax)
	}
}

func (c *Client) signInHoldingLease(ctx context.Context, failed string, cr credentials, key string) (*Session, error) {
	defer func() {
		// Release even if ctx is over, so the others need not wait out the ttl.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := c.store.Unlock(uctx, key, c.owner); err != nil {
			c.logger.WarnContext(ctx, "tableau session store unlock failed", "error", err.Error())
		}
	}()
	// Between our Load and TryLock another instance may have signed in,
	// saved and released: signing in now would end its fresh session.
	stored, err := c.store.Load(ctx, key)
	if err != nil {
		return nil, &storeError{op: "load", err: err}
	}
	if stored.usable() && stored.Token != failed {
		return stored, nil
	}
	s, err := c.signIn(ctx, cr)
	if err != nil {
		return nil, err
	}
	if err := c.store.Save(ctx, key, s); err != nil {
		// The session works; the others will sign in for themselves, which
		// costs this one its session later, but failing now would waste it.
		c.logger.WarnContext(ctx, "tableau session store save failed", "error", err.Error())
	}
	return s, nil
}

// MemorySessionStore is a SessionStore in process memory. Clients in one
// process share sessions through it; tests use it to stand for the shared
// table that separate Lambda instances would use.
type MemorySessionStore struct {
	mu       sync.Mutex
	sessions map[string]Session
	leases   map[string]lease
	now      func() time.Time
}

type lease struct {
	owner   string
	expires time.Time
}

var _ SessionStore = (*MemorySessionStore)(nil)

// NewMemorySessionStore returns an empty MemorySessionStore.
func NewMemorySessionStore() *MemorySessionStore {
	return &MemorySessionStore{
		sessions: map[string]Session{},
		leases:   map[string]lease{},
		now:      time.Now,
	}
}

// Load returns a copy of the stored session, or nil when there is none.
func (m *MemorySessionStore) Load(ctx context.Context, key string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[key]
	if !ok || s.Token == "" {
		return nil, nil
	}
	return &s, nil
}

// Save stores a copy of s; nil or an empty Session removes the entry.
func (m *MemorySessionStore) Save(ctx context.Context, key string, s *Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s == nil || s.Token == "" {
		delete(m.sessions, key)
		return nil
	}
	m.sessions[key] = *s
	return nil
}

// TryLock takes the lease if it is free, expired or already owner's.
func (m *MemorySessionStore) TryLock(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if owner == "" || ttl <= 0 {
		return false, errors.New("memory session store: owner and a positive ttl are required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if l, held := m.leases[key]; held && l.owner != owner && now.Before(l.expires) {
		return false, nil
	}
	m.leases[key] = lease{owner: owner, expires: now.Add(ttl)}
	return true, nil
}

// Unlock releases the lease if owner holds it.
func (m *MemorySessionStore) Unlock(_ context.Context, key, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, held := m.leases[key]; held && l.owner == owner {
		delete(m.leases, key)
	}
	return nil
}
