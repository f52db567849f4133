package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// cmdCheck validates a config (and its scripts) and lists every problem; exit status 1 when
// there is any.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(stderr, "wharf check: -c FILE is required")
		return 2
	}
	cfg, err := config.Load(*file)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintln(stderr, p.String())
			}
			fmt.Fprintf(stderr, "%d problem(s) found\n", len(ce.Problems))
			return 1
		}
		fmt.Fprintf(stderr, "wharf check: %v\n", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning: "+w.String())
	}
	quiet := slog.New(slog.DiscardHandler)
	bad := 0
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		events, err := dispatcherFor(sc, quiet, nil, scriptDeps{})
		if lines, ok := scriptProblems(err, cfg.Dir); ok {
			for _, l := range lines {
				fmt.Fprintln(stderr, l)
			}
			bad += len(lines)
			continue
		}
		if w, ok := events.(interface{ Warnings() []string }); ok {
			for _, msg := range w.Warnings() {
				fmt.Fprintln(stderr, "warning: "+msg)
			}
		}
		if err == nil {
			_, err = core.NewSite(sc, core.Options{Logger: quiet, Events: events})
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: site %s: %v\n", cfg.File, sc.Name, err)
			bad++
		}
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "%d problem(s) found\n", bad)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d site(s))\n", cfg.File, len(cfg.Sites))
	return 0
}
