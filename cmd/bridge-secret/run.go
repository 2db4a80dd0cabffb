package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed; for keys, the functions could not start
	exitUsage = 2 // bad command line
)

const usage = `usage: bridge-secret <command>

Reads and sets single keys of the bridge's credentials secret, keeping the
others (aws secretsmanager put-secret-value would replace them all).

commands:
  keys       list the keys and whether each is set; never prints a value
  set KEY    set KEY to the value read from standard input (on a terminal,
             typed at a prompt that does not echo); the other keys are kept
  get KEY    print KEY's value, e.g. the generated tableau_webhook_token

environment:
  SECRET_ID  the secret's ARN (stack output SecretArn) or name

A value is never taken from the command line, where shell history and ps
would keep it. Examples:
  bridge-secret set tableau_pat_secret                 (prompts)
  pbpaste | bridge-secret set dbt_webhook_secret
  bridge-secret set dbt_api_token < token.txt
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
}

// run is the whole program; main only supplies the process's arguments,
// environment and streams, so tests drive it in-process.
func run(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer, api newAPI) int {
	c := &cli{env: env, stdin: stdin, stdout: stdout, stderr: stderr, newAPI: api}
	fs := flag.NewFlagSet("bridge-secret", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return c.finish(&usageError{err.Error()})
	}
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

// knownKeys are the keys the functions read: the JSON names of
// secrets.Credentials' fields, in their order.
func knownKeys() []string {
	t := reflect.TypeFor[secrets.Credentials]()
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// oneKey checks the command line of set and get.
func oneKey(cmd string, args []string) (string, error) {
	if len(args) != 1 {
		return "", &usageError{fmt.Sprintf("%s takes one key, e.g. %s tableau_pat_secret (the value is read from standard input, never the command line)", cmd, cmd)}
	}
	if !slices.Contains(knownKeys(), args[0]) {
		return "", &usageError{fmt.Sprintf("unknown key %q; the bridge reads %s", args[0], strings.Join(knownKeys(), ", "))}
	}
	return args[0], nil
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
	raw, present := s.fields[key]
	if !present || json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, v != ""
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
		if !slices.Contains(known, k) {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	for _, k := range other {
		fmt.Fprintf(c.stdout, "  %-22s present, but the bridge does not read it (a typo?)\n", k)
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
	key, err := oneKey("get", args)
	if err != nil {
		return err
	}
	s, err := c.read(ctx)
	if err != nil {
		return err
	}
	v, ok := s.value(key)
	if !ok {
		return fmt.Errorf("%s is not set in secret %s", key, s.id)
	}
	fmt.Fprintln(c.stdout, v)
	return nil
}

func (c *cli) set(ctx context.Context, args []string) error {
	key, err := oneKey("set", args)
	if err != nil {
		return err
	}
	// Read the value before the secret, so that a mistyped SECRET_ID is
	// found after the value is typed, not before: either way nothing is
	// written until both are right.
	value, err := c.readValue(ctx, key)
	if err != nil {
		return err
	}
	s, err := c.read(ctx)
	if err != nil {
		return err
	}
	kept := make([]string, 0, len(s.fields))
	for k := range s.fields {
		if k != key {
			kept = append(kept, k)
		}
	}
	slices.Sort(kept)
	if old, _ := s.value(key); old == value {
		fmt.Fprintf(c.stdout, "%s in secret %s already has this value: nothing written\n", key, s.id)
		return nil
	}
	encoded, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	s.fields[key] = encoded
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
	fmt.Fprintf(c.stdout, "set %s in secret %s (version %s); kept %s\n", key, s.id, aws.ToString(out.VersionId), orNone(kept))
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
