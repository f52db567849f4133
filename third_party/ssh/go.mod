module github.com/wharf-project/wharf/third_party/ssh

go 1.26.0

require golang.org/x/crypto v0.59.0

require (
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
)
