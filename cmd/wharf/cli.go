package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// exitError carries an exit status other than 1 for an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a wrong command line: exit status 2, like flag's own errors.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// newFlagSet returns a flag set whose -h/--help prints usage (the command's synopsis) and
// the flags to stdout; a wrong flag prints them to stderr.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n", usage)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nFlags (before or after the arguments):")
			fs.PrintDefaults()
		}
	}
	// -h and --help go to stdout: asking for help is no error.
	fs.Bool("h", false, "print this help")
	fs.Bool("help", false, "print this help")
	return fs
}

// parseFlags parses args, accepting flags before and after the positional arguments
// ("wharf sessions kick ID -c FILE"); "--" ends the flags. It returns the positional
// arguments, or flag.ErrHelp after printing the help for -h or --help.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError("%v", err)
		}
		if wantsHelp(fs) {
			out := fs.Output()
			fs.SetOutput(stdout)
			fs.Usage()
			fs.SetOutput(out)
			return nil, flag.ErrHelp
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func wantsHelp(fs *flag.FlagSet) bool {
	h := false
	fs.Visit(func(f *flag.Flag) { h = h || f.Name == "h" || f.Name == "help" })
	return h
}

// exitCode maps a command's error to the process's exit status: 0 for a help request, the
// code of an exitError, else 1.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}
