package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
)

var errNoDBTToken = errors.New("the secret has no dbt_api_token (a dbt Cloud service token with job admin rights), which the scheduled path needs")

// Start is what a function's main does first: read the configuration from
// the environment and build the App. With DEMO=true it first starts the
// Tableau and dbt Cloud simulators with demo content and points the
// configuration at them; stop ends them. Without it, settings a deployed
// function cannot run without stop it here, with one line that names them.
func Start(ctx context.Context) (a *App, d *demo.Demo, stop func(), err error) {
	stop = func() {}
	var overridden []string
	if on, _ := strconv.ParseBool(strings.TrimSpace(os.Getenv("DEMO"))); on {
		d = demo.Start()
		stop = d.Close
		overridden = d.Apply()
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		stop()
		return nil, nil, func() {}, err
	}
	a, err = Build(ctx, cfg, NewLogger(cfg.LogLevel))
	if err != nil {
		stop()
		return nil, nil, func() {}, err
	}
	if mem, ok := a.Store.(demo.Store); ok && d != nil && cfg.StateTable == "" {
		// The status page's demo content, in every state. Never in a
		// table: DEMO=true beside STATE_TABLE writes nothing there.
		if err := d.Seed(ctx, mem, time.Now()); err != nil {
			stop()
			return nil, nil, func() {}, err
		}
	}
	if d != nil {
		// Said once the configuration is known to be good, so that a
		// configuration error is the last thing printed.
		fmt.Fprintln(os.Stderr, "DEMO=true: using the Tableau and dbt Cloud simulators with demo content; Tableau at", d.Tableau.URL())
		if len(overridden) > 0 {
			fmt.Fprintf(os.Stderr, "demo: ignoring %s from your environment: the simulators know only the demo's\n", strings.Join(overridden, ", "))
		}
	}
	return a, d, stop, nil
}
