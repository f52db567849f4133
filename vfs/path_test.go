package vfs

import (
	"errors"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "", want: "/"},
		{in: ".", want: "/"},
		{in: "/", want: "/"},
		{in: "..", want: "/"},
		{in: "/..", want: "/"},
		{in: "a/b", want: "/a/b"},
		{in: "/a/b", want: "/a/b"},
		{in: "/a/../../b", want: "/b"},
		{in: "../../etc/passwd", want: "/etc/passwd"},
		{in: "a//b/", want: "/a/b"},
		{in: "//a///b//", want: "/a/b"},
		{in: "/a/./b", want: "/a/b"},
		{in: "./a/./b/.", want: "/a/b"},
		{in: "/a/b/..", want: "/a"},
		{in: `a\..\b`, want: `/a\..\b`},
		{in: `\\server\share`, want: `/\\server\share`},
		{in: "...", want: "/..."},
		{in: "/a b/ü", want: "/a b/ü"},
		{in: "a\x00b", err: ErrInvalidPath},
		{in: "\x00", err: ErrInvalidPath},
		{in: "/a/\x00/..", err: ErrInvalidPath},
	}
	for _, tt := range tests {
		got, err := Clean(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("Clean(%q) error = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLinkTarget(t *testing.T) {
	tests := []struct {
		dir, target, want string
		err               error
	}{
		{dir: "/", target: "x", want: "/x"},
		{dir: "/", target: "/x/y", want: "/x/y"},
		{dir: "/a/b", target: "../c", want: "/a/c"},
		{dir: "/a/b", target: "../../c", want: "/c"},
		{dir: "/a/b", target: ".", want: "/a/b"},
		{dir: "/a", target: "/", want: "/"},
		{dir: "/a", target: "//x//y/", want: "/x/y"},
		{dir: "/", target: "..", err: errEscapes},
		{dir: "/", target: "../x", err: errEscapes},
		{dir: "/a/b", target: "../../../c", err: errEscapes},
		{dir: "/a", target: "/../x", err: errEscapes},
		{dir: "/a", target: "x/../../../y", err: errEscapes},
		{dir: "/", target: "", err: ErrInvalidPath},
		{dir: "/", target: "a\x00", err: ErrInvalidPath},
	}
	for _, tt := range tests {
		got, err := linkTarget(tt.dir, tt.target)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("linkTarget(%q, %q) = %q, %v; want %q, %v", tt.dir, tt.target, got, err, tt.want, tt.err)
		}
	}
}
