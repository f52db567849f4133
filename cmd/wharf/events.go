package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting"
)

// dispatcherFor returns the event dispatcher of a site: its script engine, with every script
// of the site's and its users' event_handlers compiled. onError, when set, learns of every
// failed or timed-out script run (for metrics); deps are the mail spool and the settings of
// asynchronous handlers.
func dispatcherFor(sc *config.Site, log *slog.Logger, onError func(core.EventName), deps scriptDeps) (core.Dispatcher, error) {
	opts := scripting.Options{Logger: log}
	deps.options(&opts)
	if onError != nil {
		opts.Observe = func(a scripting.Action) {
			if a.Name == "error" {
				onError(a.Event)
			}
		}
	}
	eng, err := scripting.New(sc, opts)
	if err != nil {
		return nil, fmt.Errorf("site %s: event scripts: %w", sc.Name, err)
	}
	return eng, nil
}

// scriptProblems lists the scripts that failed to load, one line each like a compiler
// message, with paths relative to dir (the config file's folder) where that is shorter.
// ok is false when err is not about scripts.
func scriptProblems(err error, dir string) (lines []string, ok bool) {
	var le *scripting.LoadError
	if !errors.As(err, &le) {
		return nil, false
	}
	for _, s := range le.Scripts {
		c := *s
		if rel, err := filepath.Rel(dir, c.File); err == nil && filepath.IsLocal(rel) {
			c.File = rel
		}
		lines = append(lines, c.Error())
	}
	return lines, true
}
