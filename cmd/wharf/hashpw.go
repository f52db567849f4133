package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/wharf-project/wharf/core"
)

// cmdHashPassword reads a password (from stdin when it is not a terminal, else by prompting
// twice without echo) and prints its hash.
func cmdHashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("hash-password", "wharf hash-password [--bcrypt]   (the password is read from stdin, or prompted for twice)", stderr)
	useBcrypt := fs.Bool("bcrypt", false, "print a bcrypt hash instead of argon2id")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		// A password on the command line stays in the shell's history and is visible to
		// every user in ps while the command runs: refuse it rather than ignore it.
		return usageError("the password is not taken as an argument (it would stay in your shell history and show in ps); " +
			"run `wharf hash-password` and type it, or pipe it in: `wharf hash-password < file`")
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	if pw == "" {
		return errors.New("empty password")
	}
	var h string
	if *useBcrypt {
		if len(pw) > 72 {
			return errors.New("bcrypt only uses the first 72 bytes of a password; use argon2id (the default)")
		}
		h, err = core.HashPasswordBcrypt(pw)
	} else {
		h, err = core.HashPassword(pw)
	}
	if err != nil {
		return fmt.Errorf("hashing: %w", err)
	}
	fmt.Fprintln(stdout, h)
	return nil
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
