package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed; for keys, the functions could not start
	exitUsage = 2 // bad command line
)

const usage = `usage: bridge-secret [-site CONTENT_URL] <command>

Reads and sets single keys of the bridge's credentials secret, keeping the
others (aws secretsmanager put-secret-value would replace them all).

commands:
  keys       list the keys and whether each is set; never prints a value
  set KEY    set KEY to the value read from standard input (on a terminal,
             typed at a prompt that does not echo); the other keys are kept
  get KEY    print KEY's value, e.g. the generated tableau_webhook_token

-site CONTENT_URL
             set or get a key of another Tableau site than TABLEAU_SITE:
             tableau_sites[CONTENT_URL].KEY, where KEY is one of
             ` + "tableau_pat_name, tableau_pat_secret, tableau_client_id,\n             tableau_secret_id, tableau_secret_value, tableau_username" + `

environment:
  SECRET_ID  the secret's ARN (stack output SecretArn) or name

A value is never taken from the command line, where shell history and ps
would keep it. Examples:
  bridge-secret set tableau_pat_secret                 (prompts)
  pbpaste | bridge-secret set dbt_webhook_secret
  bridge-secret set dbt_api_token < token.txt
  bridge-secret -site emea set tableau_pat_secret      (the site emea's PAT)
`

// maxValue is Secrets Manager's limit on a whole SecretString.
const maxValue = 65536

// secretsAPI is the part of the Secrets Manager client the command uses.
type secretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// newAPI makes the client for a secret id; tests point it at moto_server.
type newAPI func(ctx context.Context, secretID string) (secretsAPI, error)

// defaultAPI loads the SDK's configuration. A secret ARN names its region,
// which then wins over the profile's: the secret is only found there.
func defaultAPI(ctx context.Context, secretID string) (secretsAPI, error) {
	var opts []func(*config.LoadOptions) error
	if a, err := arn.Parse(secretID); err == nil && a.Region != "" {
		opts = append(opts, config.WithRegion(a.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return secretsmanager.NewFromConfig(cfg), nil
}

// usageError is a bad command line: exit 2 and the usage text.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// cli is one invocation.
type cli struct {
	env    func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	newAPI newAPI
	// site is -site: the keys are those of tableau_sites[site]; "" for the
	// top-level keys.
	site string
}

// run is the whole program; main only supplies the process's arguments,
// environment and streams, so tests drive it in-process.
func run(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer, api newAPI) int {
	c := &cli{env: env, stdin: stdin, stdout: stdout, stderr: stderr, newAPI: api}
	fs := flag.NewFlagSet("bridge-secret", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	site := fs.String("site", "", "a Tableau site other than TABLEAU_SITE: its keys under tableau_sites")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return c.finish(&usageError{err.Error()})
	}
	if err := refreshmap.CheckSite(*site); err != nil {
		return c.finish(&usageError{"-site: " + err.Error()})
	}
	c.site = *site
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "keys":
		err = c.keys(ctx, rest)
	case "set":
		err = c.set(ctx, rest)
	case "get":
		err = c.get(ctx, rest)
	default:
		err = &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	return c.finish(err)
}

func (c *cli) finish(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "bridge-secret: %s\n\n%s", ue.msg, usage)
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "bridge-secret: %s\n", err)
		return exitFail
	}
}

// sitesKey holds the other sites' credentials, an object by site.
const sitesKey = "tableau_sites"

// knownKeys are the keys the functions read as strings: the JSON names of
// secrets.Credentials' string fields, in their order (the other sites'
// keys, under sitesKey, are secrets.SiteKeys).
func knownKeys() []string {
	t := reflect.TypeFor[secrets.Credentials]()
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if t.Field(i).Type.Kind() != reflect.String {
			continue
		}
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// oneKey checks the command line of set and get.
func (c *cli) oneKey(cmd string, args []string) (string, error) {
	if len(args) != 1 {
		return "", &usageError{fmt.Sprintf("%s takes one key, e.g. %s tableau_pat_secret (the value is read from standard input, never the command line)", cmd, cmd)}
	}
	switch {
	case c.site != "" && !slices.Contains(secrets.SiteKeys, args[0]):
		return "", &usageError{fmt.Sprintf("unknown key %q for a site; a site's keys are %s", args[0], strings.Join(secrets.SiteKeys, ", "))}
	case c.site == "" && args[0] == sitesKey:
		return "", &usageError{fmt.Sprintf("%s holds the other sites' keys: set one with -site, e.g. -site emea %s tableau_pat_name", sitesKey, cmd)}
	case c.site == "" && !slices.Contains(knownKeys(), args[0]):
		return "", &usageError{fmt.Sprintf("unknown key %q; the bridge reads %s (and, with -site, a site's %s)", args[0], strings.Join(knownKeys(), ", "), strings.Join(secrets.SiteKeys, ", "))}
	}
	return args[0], nil
}

// name is how messages name key: tableau_sites["emea"].tableau_pat_name
// with -site.
func (c *cli) name(key string) string {
	if c.site == "" {
		return key
	}
	return fmt.Sprintf("%s[%q].%s", sitesKey, c.site, key)
}

// secret is the secret as read: its JSON object with each value kept as
// written, so that setting one key leaves the others byte for byte.
type secret struct {
	id     string // as given in SECRET_ID
	arn    string
	fields map[string]json.RawMessage
	api    secretsAPI
}

func (c *cli) read(ctx context.Context) (*secret, error) {
	id := strings.TrimSpace(c.env("SECRET_ID"))
	if id == "" {
		return nil, errors.New(`SECRET_ID is not set: give the stack output SecretArn, e.g.
  SECRET_ID=$(aws cloudformation describe-stacks --stack-name dbt-tableau-refresh --query "Stacks[0].Outputs[?OutputKey=='SecretArn'].OutputValue" --output text)`)
	}
	api, err := c.newAPI(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", id, err)
	}
	if out.SecretString == nil {
		return nil, fmt.Errorf("secret %s holds binary data, not the JSON object the bridge reads", id)
	}
	var fields map[string]json.RawMessage
	// The decoder's error may quote the secret's text: do not wrap it.
	if err := json.Unmarshal([]byte(*out.SecretString), &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("secret %s is not a JSON object, so the functions cannot read it either; put a whole object first (README, Deploy with SAM)", id)
	}
	return &secret{id: id, arn: aws.ToString(out.ARN), fields: fields, api: api}, nil
}

// value is key's string value; ok is false when the key is absent, empty or
// not a string.
func (s *secret) value(key string) (v string, ok bool) {
	return stringValue(s.fields, key)
}

func stringValue(fields map[string]json.RawMessage, key string) (v string, ok bool) {
	raw, present := fields[key]
	if !present || json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, v != ""
}

// sites returns tableau_sites, by site as written; an error when it is not
// an object of objects.
func (s *secret) sites() (map[string]map[string]json.RawMessage, error) {
	raw, ok := s.fields[sitesKey]
	if !ok || string(raw) == "null" {
		return map[string]map[string]json.RawMessage{}, nil
	}
	var out map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("secret %s: %s is not an object of objects by site, so the functions cannot read it either", s.id, sitesKey)
	}
	if out == nil {
		out = map[string]map[string]json.RawMessage{}
	}
	return out, nil
}

// site returns the fields of site's entry in tableau_sites and the key
// it is under: found without regard to case, as Tableau reads content
// URLs; a new entry (nil fields) is under site as given.
func (s *secret) site(site string) (fields map[string]json.RawMessage, under string, all map[string]map[string]json.RawMessage, err error) {
	all, err = s.sites()
	if err != nil {
		return nil, "", nil, err
	}
	if f, ok := all[site]; ok {
		return f, site, all, nil
	}
	for k, f := range all {
		if strings.EqualFold(k, site) {
			return f, k, all, nil
		}
	}
	return nil, site, all, nil
}

// lookup is key's value at the cli's level: top-level, or the site's.
func (c *cli) lookup(s *secret, key string) (string, bool, error) {
	if c.site == "" {
		v, ok := s.value(key)
		return v, ok, nil
	}
	fields, _, _, err := s.site(c.site)
	if err != nil {
		return "", false, err
	}
	v, ok := stringValue(fields, key)
	return v, ok, nil
}

func (c *cli) keys(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return &usageError{"keys takes no arguments"}
	}
	s, err := c.read(ctx)
	if err != nil {
		return err
	}
	known := knownKeys()
	fmt.Fprintf(c.stdout, "secret %s\n", s.id)
	for _, k := range known {
		state := "not set"
		if _, ok := s.value(k); ok {
			state = "set"
		} else if _, present := s.fields[k]; present {
			state = "empty"
		}
		fmt.Fprintf(c.stdout, "  %-22s %s\n", k, state)
	}
	var other []string
	for k := range s.fields {
		if !slices.Contains(known, k) && k != sitesKey {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	for _, k := range other {
		fmt.Fprintf(c.stdout, "  %-22s present, but the bridge does not read it (a typo?)\n", k)
	}
	all, err := s.sites()
	if err != nil {
		return err
	}
	for _, site := range slices.Sorted(maps.Keys(all)) {
		fields := all[site]
		var set []string
		for _, k := range secrets.SiteKeys {
			if _, ok := stringValue(fields, k); ok {
				set = append(set, k)
			}
		}
		state := "set: " + orNone(set)
		var creds secrets.Credentials
		raw, _ := json.Marshal(map[string]any{sitesKey: map[string]any{site: fields}})
		if json.Unmarshal(raw, &creds) != nil {
			state = "some value is not a string"
		} else if _, err := creds.Site(site); err != nil {
			var missing *secrets.MissingSiteCredentialsError
			if errors.As(err, &missing) {
				state += "; cannot sign in: missing " + strings.Join(missing.Missing, ", ")
			}
		} else {
			state += "; signs in"
		}
		fmt.Fprintf(c.stdout, "  %-22s %s\n", fmt.Sprintf("%s[%q]", sitesKey, site), state)
	}
	// The functions' own check, so "ready" means they can start.
	var creds secrets.Credentials
	raw, _ := json.Marshal(s.fields)
	if err := json.Unmarshal(raw, &creds); err != nil {
		return fmt.Errorf("secret %s: some value is not a string, so the functions cannot read it", s.id)
	}
	if err := creds.Validate(); err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	fmt.Fprintln(c.stdout, "ready: the functions can read every key they need")
	return nil
}

func (c *cli) get(ctx context.Context, args []string) error {
	key, err := c.oneKey("get", args)
	if err != nil {
		return err
	}
	s, err := c.read(ctx)
	if err != nil {
		return err
	}
	v, ok, err := c.lookup(s, key)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s is not set in secret %s", c.name(key), s.id)
	}
	fmt.Fprintln(c.stdout, v)
	return nil
}

func (c *cli) set(ctx context.Context, args []string) error {
	key, err := c.oneKey("set", args)
	if err != nil {
		return err
	}
	// Read the value before the secret, so that a mistyped SECRET_ID is
	// found after the value is typed, not before: either way nothing is
	// written until both are right.
	value, err := c.readValue(ctx, c.name(key))
	if err != nil {
		return err
	}
	s, err := c.read(ctx)
	if err != nil {
		return err
	}
	// Where the key lives: the top level, or the site's entry.
	fields, under := s.fields, ""
	var all map[string]map[string]json.RawMessage
	if c.site != "" {
		if fields, under, all, err = s.site(c.site); err != nil {
			return err
		}
		if fields == nil {
			fields = map[string]json.RawMessage{}
		}
		c.site = under // an entry's spelling as written
	}
	kept := make([]string, 0, len(fields))
	for k := range fields {
		if k != key {
			kept = append(kept, k)
		}
	}
	slices.Sort(kept)
	if old, _ := stringValue(fields, key); old == value {
		fmt.Fprintf(c.stdout, "%s in secret %s already has this value: nothing written\n", c.name(key), s.id)
		return nil
	}
	encoded, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	fields[key] = encoded
	if c.site != "" {
		all[under] = fields
		if s.fields[sitesKey], err = json.Marshal(all); err != nil {
			return fmt.Errorf("encode %s: %w", sitesKey, err)
		}
	}
	body, err := json.Marshal(s.fields)
	if err != nil {
		return fmt.Errorf("encode secret: %w", err)
	}
	if len(body) > maxValue {
		return fmt.Errorf("secret %s would be %d bytes, over Secrets Manager's %d", s.id, len(body), maxValue)
	}
	// The ARN read, not SECRET_ID: a name could meanwhile name another
	// secret, and the version goes where the other keys came from.
	target := s.arn
	if target == "" {
		target = s.id
	}
	out, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String(target),
		SecretString: aws.String(string(body)),
	})
	if err != nil {
		return fmt.Errorf("write secret %s: %w", s.id, err)
	}
	what := "kept " + orNone(kept)
	if c.site != "" {
		what = fmt.Sprintf("kept the site's %s, and every other key", orNone(kept))
	}
	fmt.Fprintf(c.stdout, "set %s in secret %s (version %s); %s\n", c.name(key), s.id, aws.ToString(out.VersionId), what)
	fmt.Fprintf(c.stdout, "warm functions read it within %s (SECRET_CACHE_TTL)\n", secrets.DefaultTTL)
	if key == "tableau_webhook_token" {
		fmt.Fprintln(c.stdout, `Tableau's webhooks still call the old token's URL: re-create them with
  make tableau-webhooks ARGS="create -replace -url <TableauWebhookUrl>"`)
	}
	return nil
}

func orNone(keys []string) string {
	if len(keys) == 0 {
		return "no other keys"
	}
	return strings.Join(keys, ", ")
}

// readValue reads the value: one line typed at a prompt without echo when
// standard input is a terminal, else all of standard input less its final
// line break (so that echo, a file or a clipboard pipe all work).
func (c *cli) readValue(ctx context.Context, key string) (string, error) {
	in := c.stdin
	if f, ok := in.(*os.File); ok {
		if restore, err := echoOff(f); err == nil {
			defer restore()
			fmt.Fprintf(c.stderr, "%s (typing is not shown): ", key)
			defer fmt.Fprintln(c.stderr)
			line, err := readLine(ctx, f)
			if err != nil {
				return "", err
			}
			return checkValue(key, line)
		}
	}
	b, err := io.ReadAll(io.LimitReader(in, maxValue+1))
	if err != nil {
		return "", fmt.Errorf("read the value of %s from standard input: %w", key, err)
	}
	if len(b) > maxValue {
		return "", fmt.Errorf("the value of %s is over Secrets Manager's %d bytes", key, maxValue)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	return checkValue(key, v)
}

func checkValue(key, v string) (string, error) {
	switch {
	case v == "":
		return "", fmt.Errorf("no value for %s on standard input: nothing written", key)
	case strings.ContainsAny(v, "\r\n"):
		return "", fmt.Errorf("the value of %s has more than one line (every key holds a one-line token, name or URL): nothing written", key)
	case strings.TrimSpace(v) != v:
		return "", fmt.Errorf("the value of %s starts or ends with white space, which no token, name or URL does: nothing written", key)
	}
	return v, nil
}

// readLine reads one line, giving up when ctx ends (Ctrl-C at the prompt).
func readLine(ctx context.Context, r io.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err == io.EOF && line != "" {
			err = nil
		}
		done <- result{strings.TrimRight(line, "\r\n"), err}
	}()
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("interrupted: nothing written")
	case res := <-done:
		if res.err != nil {
			return "", fmt.Errorf("read the value: %w", res.err)
		}
		return res.line, nil
	}
}

// echoOff turns the terminal's echo off with stty, the way read -s does,
// rather than linking a terminal package for one prompt. It fails when f
// is not a terminal.
func echoOff(f *os.File) (restore func(), err error) {
	stty := func(arg string) error {
		cmd := exec.Command("stty", arg)
		cmd.Stdin = f
		return cmd.Run()
	}
	if err := stty("-echo"); err != nil {
		return nil, err
	}
	return func() { _ = stty("echo") }, nil
}
