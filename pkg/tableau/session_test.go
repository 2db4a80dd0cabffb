package tableau

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

func TestMemorySessionStore(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	newStore := func() *MemorySessionStore {
		m := NewMemorySessionStore()
		m.now = func() time.Time { return now }
		return m
	}
	tests := []struct {
		name string
		run  func(t *testing.T, m *MemorySessionStore)
	}{
		{"load of nothing is nil, nil", func(t *testing.T, m *MemorySessionStore) {
			s, err := m.Load(ctx, "k")
			if s != nil || err != nil {
				t.Errorf("Load = %v, %v", s, err)
			}
		}},
		{"save then load returns a copy", func(t *testing.T, m *MemorySessionStore) {
			in := &Session{Token: "t", SiteID: "s", UserID: "u", CreatedAt: now}
			if err := m.Save(ctx, "k", in); err != nil {
				t.Fatal(err)
			}
			in.Token = "changed"
			got, _ := m.Load(ctx, "k")
			if got == nil || got.Token != "t" || got.SiteID != "s" {
				t.Fatalf("Load = %+v", got)
			}
			got.Token = "changed too"
			if again, _ := m.Load(ctx, "k"); again.Token != "t" {
				t.Error("Load returned the stored value itself")
			}
		}},
		{"keys are separate", func(t *testing.T, m *MemorySessionStore) {
			m.Save(ctx, "a", &Session{Token: "ta", SiteID: "s"})
			if s, _ := m.Load(ctx, "b"); s != nil {
				t.Errorf("Load(b) = %+v", s)
			}
		}},
		{"empty session clears", func(t *testing.T, m *MemorySessionStore) {
			m.Save(ctx, "k", &Session{Token: "t", SiteID: "s"})
			m.Save(ctx, "k", &Session{})
			if s, _ := m.Load(ctx, "k"); s != nil {
				t.Errorf("Load after clearing = %+v", s)
			}
			m.Save(ctx, "k", &Session{Token: "t", SiteID: "s"})
			m.Save(ctx, "k", nil)
			if s, _ := m.Load(ctx, "k"); s != nil {
				t.Errorf("Load after nil save = %+v", s)
			}
		}},
		{"lease is exclusive until ttl", func(t *testing.T, m *MemorySessionStore) {
			if ok, _ := m.TryLock(ctx, "k", "a", time.Minute); !ok {
				t.Fatal("first TryLock failed")
			}
			if ok, _ := m.TryLock(ctx, "k", "b", time.Minute); ok {
				t.Fatal("second owner got a held lease")
			}
			if ok, _ := m.TryLock(ctx, "k", "a", time.Minute); !ok {
				t.Error("holder could not extend its lease")
			}
			if ok, _ := m.TryLock(ctx, "other", "b", time.Minute); !ok {
				t.Error("lease on another key was refused")
			}
			now = now.Add(2 * time.Minute)
			if ok, _ := m.TryLock(ctx, "k", "b", time.Minute); !ok {
				t.Error("expired lease was not granted")
			}
		}},
		{"unlock by non-owner does nothing", func(t *testing.T, m *MemorySessionStore) {
			m.TryLock(ctx, "k", "a", time.Minute)
			m.Unlock(ctx, "k", "b")
			if ok, _ := m.TryLock(ctx, "k", "b", time.Minute); ok {
				t.Error("lease freed by a non-owner")
			}
			m.Unlock(ctx, "k", "a")
			if ok, _ := m.TryLock(ctx, "k", "b", time.Minute); !ok {
				t.Error("lease not freed by its owner")
			}
		}},
		{"bad lease arguments", func(t *testing.T, m *MemorySessionStore) {
			if _, err := m.TryLock(ctx, "k", "", time.Minute); err == nil {
				t.Error("empty owner accepted")
			}
			if _, err := m.TryLock(ctx, "k", "a", 0); err == nil {
				t.Error("zero ttl accepted")
			}
		}},
		{"cancelled context", func(t *testing.T, m *MemorySessionStore) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := m.Load(cctx, "k"); err == nil {
				t.Error("Load ignored a cancelled context")
			}
			if err := m.Save(cctx, "k", &Session{Token: "t"}); err == nil {
				t.Error("Save ignored a cancelled context")
			}
			if _, err := m.TryLock(cctx, "k", "a", time.Minute); err == nil {
				t.Error("TryLock ignored a cancelled context")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore()) })
	}
}

func TestSessionKey(t *testing.T) {
	mk := func(url, site string, cred Option) string {
		c, err := NewClient(url, WithSite(site), cred)
		if err != nil {
			t.Fatal(err)
		}
		return c.SessionKey()
	}
	base := mk("https://tableau.example.com", "mysite", WithPAT("bot", "secret-1"))
	tests := []struct {
		name string
		key  string
		same bool
	}{
		{"same PAT name, other secret", mk("https://tableau.example.com/", "mysite", WithPAT("bot", "secret-2")), true},
		{"other site", mk("https://tableau.example.com", "other", WithPAT("bot", "secret-1")), false},
		{"other server", mk("https://tableau2.example.com", "mysite", WithPAT("bot", "secret-1")), false},
		{"other PAT", mk("https://tableau.example.com", "mysite", WithPAT("bot2", "secret-1")), false},
		{"connected app", mk("https://tableau.example.com", "mysite", WithConnectedApp(ConnectedApp{ClientID: "c", SecretID: "i", SecretValue: "secret-1", Username: "u"})), false},
		{"separator in names cannot collide", mk("https://tableau.example.com", "my|site", WithPAT("bot", "secret-1")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.key == base) != tt.same {
				t.Errorf("key %q vs %q: same=%v, want %v", tt.key, base, tt.key == base, tt.same)
			}
			if strings.Contains(tt.key, "secret") {
				t.Errorf("key %q contains the secret", tt.key)
			}
		})
	}
}

// flakyStore wraps a MemorySessionStore and fails the named operation.
type flakyStore struct {
	*MemorySessionStore
	fail string
}

var errStoreDown = errors.New("dynamodb: throttled")

func (f *flakyStore) Load(ctx context.Context, k string) (*Session, error) {
	if f.fail == "load" {
		return nil, errStoreDown
	}
	return f.MemorySessionStore.Load(ctx, k)
}

func (f *flakyStore) Save(ctx context.Context, k string, s *Session) error {
	if f.fail == "save" {
		return errStoreDown
	}
	return f.MemorySessionStore.Save(ctx, k, s)
}

func (f *flakyStore) TryLock(ctx context.Context, k, o string, ttl time.Duration) (bool, error) {
	if f.fail == "lock" {
		return false, errStoreDown
	}
	return f.MemorySessionStore.TryLock(ctx, k, o, ttl)
}

// TestSharedSessionFlow covers each branch of getting a session through a
// SessionStore.
func TestSharedSessionFlow(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// prepare sets up the store before the call; key is the Client's.
		prepare     func(t *testing.T, m *MemorySessionStore, key string)
		fail        string
		failFirst   bool // the job endpoint answers 401002 to "stored-tok"
		wantSignIns int32
		wantToken   string // the session the Client ends with
		wantErr     string
		wantStored  string // token in the store afterwards ("" = none)
	}{
		{
			name:        "empty store: sign in and save",
			prepare:     func(*testing.T, *MemorySessionStore, string) {},
			wantSignIns: 1, wantToken: "tok-1", wantStored: "tok-1",
		},
		{
			name: "stored session adopted without signing in",
			prepare: func(_ *testing.T, m *MemorySessionStore, key string) {
				m.Save(ctx, key, &Session{Token: "stored-tok", SiteID: "site-luid"})
			},
			wantSignIns: 0, wantToken: "stored-tok", wantStored: "stored-tok",
		},
		{
			name: "stored session that fails is replaced",
			prepare: func(_ *testing.T, m *MemorySessionStore, key string) {
				m.Save(ctx, key, &Session{Token: "stored-tok", SiteID: "site-luid"})
			},
			failFirst:   true,
			wantSignIns: 1, wantToken: "tok-1", wantStored: "tok-1",
		},
		{
			name: "stored session without site id is not used",
			prepare: func(_ *testing.T, m *MemorySessionStore, key string) {
				m.Save(ctx, key, &Session{Token: "stored-tok"})
			},
			wantSignIns: 1, wantToken: "tok-1", wantStored: "tok-1",
		},
		{
			name: "lease of a dead holder expires and is taken",
			prepare: func(_ *testing.T, m *MemorySessionStore, key string) {
				m.TryLock(ctx, key, "dead-instance", 30*time.Millisecond)
			},
			wantSignIns: 1, wantToken: "tok-1", wantStored: "tok-1",
		},
		{
			name: "other holder's session is adopted when it appears",
			prepare: func(t *testing.T, m *MemorySessionStore, key string) {
				m.TryLock(ctx, key, "other-instance", time.Minute)
				go func() {
					time.Sleep(20 * time.Millisecond)
					m.Save(ctx, key, &Session{Token: "other-tok", SiteID: "site-luid"})
					m.Unlock(ctx, key, "other-instance")
				}()
			},
			wantSignIns: 0, wantToken: "other-tok", wantStored: "other-tok",
		},
		{
			name: "holder that never finishes: bounded wait",
			prepare: func(_ *testing.T, m *MemorySessionStore, key string) {
				m.TryLock(ctx, key, "stuck-instance", time.Hour)
			},
			wantErr: "held the sign-in lease",
		},
		{name: "load fails", fail: "load", prepare: func(*testing.T, *MemorySessionStore, string) {}, wantErr: "session store load"},
		{name: "lock fails", fail: "lock", prepare: func(*testing.T, *MemorySessionStore, string) {}, wantErr: "session store lock"},
		{
			name: "save fails: session still used", fail: "save",
			prepare:     func(*testing.T, *MemorySessionStore, string) {},
			wantSignIns: 1, wantToken: "tok-1", wantStored: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := NewMemorySessionStore()
			store := &flakyStore{MemorySessionStore: mem, fail: tt.fail}
			env := setup(t, WithSessionStore(store))
			// Real sleeps here, but short: the lease cases need time to pass.
			env.client.sleep = remote.Sleep
			env.client.leasePoll = time.Millisecond
			env.client.leasePollMax = 5 * time.Millisecond
			env.client.leaseWait = 200 * time.Millisecond
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
				if tt.failFirst && r.Header.Get("X-Tableau-Auth") == "stored-tok" {
					writeJSON(w, 401, tableauError(401, "401002", "Unauthorized", ""))
					return
				}
				writeBytes(w, 200, "application/json", fixture(t, "job_running.json"))
			})
			tt.prepare(t, mem, env.client.SessionKey())
			_, err := env.client.Job(ctx, "job-1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
				}
				if !Retryable(err) {
					t.Errorf("store/lease error %v should be retryable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := env.signIns.Load(); got != tt.wantSignIns {
				t.Errorf("sign-ins = %d, want %d", got, tt.wantSignIns)
			}
			if got := env.client.sess.Token; got != tt.wantToken {
				t.Errorf("client token = %q, want %q", got, tt.wantToken)
			}
			stored, _ := mem.Load(ctx, env.client.SessionKey())
			switch {
			case tt.wantStored == "" && stored != nil:
				t.Errorf("stored = %+v, want none", stored)
			case tt.wantStored != "" && (stored == nil || stored.Token != tt.wantStored):
				t.Errorf("stored = %+v, want token %q", stored, tt.wantStored)
			}
			if ok, _ := mem.TryLock(ctx, env.client.SessionKey(), "checker", time.Second); !ok {
				t.Error("lease still held after sign-in")
			}
		})
	}
}

// TestLeaseRecheckAfterLock covers the race where another instance saves a
// session between our Load and our TryLock: we must adopt it, not sign in.
func TestLeaseRecheckAfterLock(t *testing.T) {
	ctx := context.Background()
	mem := NewMemorySessionStore()
	env := setup(t)
	env.handleSignIn(t)
	racy := &racyStore{MemorySessionStore: mem}
	env.client.store = racy
	env.client.storeKey = "k"
	s, err := env.client.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Token != "raced-in" || env.signIns.Load() != 0 {
		t.Errorf("token %q after %d sign-ins, want the raced-in session and no sign-in", s.Token, env.signIns.Load())
	}
}

// racyStore saves a session right after the first Load, as another instance might.
type racyStore struct {
	*MemorySessionStore
	once sync.Once
}

func (r *racyStore) Load(ctx context.Context, k string) (*Session, error) {
	s, err := r.MemorySessionStore.Load(ctx, k)
	r.once.Do(func() { r.MemorySessionStore.Save(ctx, k, &Session{Token: "raced-in", SiteID: "site-luid"}) })
	return s, err
}
