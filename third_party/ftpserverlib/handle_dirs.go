package ftpserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/afero"
)

// thrown if listing with a filePath isn't supported (MLSD, NLST)
var errFileList = errors.New("listing a file isn't allowed")

// the order matter, put parameters with more characters first
var supportedlistArgs = []string{"-al", "-la", "-a", "-l"} //nolint:gochecknoglobals

func (c *clientHandler) absPath(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}

	return path.Join(c.Path(), p)
}

// getRelativePath returns the specified path as relative to the
// current working directory. The specified path must be cleaned
func (c *clientHandler) getRelativePath(inputPath string) string {
	var builder strings.Builder
	base := c.Path()

	for {
		if base == inputPath {
			return builder.String()
		}

		if !strings.HasSuffix(base, "/") {
			base += "/"
		}

		if strings.HasPrefix(inputPath, base) {
			builder.WriteString(strings.TrimPrefix(inputPath, base))

			return builder.String()
		}

		if base == "/" || base == "./" {
			return inputPath
		}

		builder.WriteString("../")

		base = path.Dir(path.Clean(base))
	}
}

func (c *clientHandler) handleCWD(param string) error {
	pathAbsolute := c.absPath(param)

	if stat, err := c.driver.Stat(pathAbsolute); err == nil {
		if stat.IsDir() {
			c.SetPath(pathAbsolute)
			c.writeMessage(StatusFileOK, "CD worked on "+pathAbsolute)
		} else {
			c.writeMessage(StatusActionNotTaken, fmt.Sprintf("Can't change directory to %s: Not a Directory", pathAbsolute))
		}
	} else {
		c.writeMessage(StatusActionNotTaken, fmt.Sprintf("CD issue: %v", err))
	}

	return nil
}

func (c *clientHandler) handleMKD(param string) error {
	pathAbsolute := c.absPath(param)
	if err := c.driver.Mkdir(pathAbsolute, 0o755); err == nil {
		// handleMKD confirms to "quote-doubling"
		// https://tools.ietf.org/html/rfc959 , page 63
		c.writeMessage(StatusPathCreated, fmt.Sprintf(`Created dir "%s"`, quoteDoubling(pathAbsolute)))
	} else {
		c.writeMessage(StatusActionNotTaken, fmt.Sprintf(`Could not create "%s" : %v`, quoteDoubling(pathAbsolute), err))
	}

	return nil
}

func (c *clientHandler) handleMKDIR(params string) {
	if params == "" {
		c.writeMessage(StatusSyntaxErrorNotRecognised, "Missing path")

		return
	}

	p := c.absPath(params)

	if err := c.driver.MkdirAll(p, 0o755); err == nil {
		c.writeMessage(StatusFileOK, "Created dir "+p)
	} else {
		c.writeMessage(StatusActionNotTaken, fmt.Sprintf("Couldn't create dir %s: %v", p, err))
	}
}

func (c *clientHandler) handleRMD(param string) error {
	var err error

	pathAbsolute := c.absPath(param)

	if rmd, ok := c.driver.(ClientDriverExtensionRemoveDir); ok {
		err = rmd.RemoveDir(pathAbsolute)
	} else {
		err = c.driver.Remove(pathAbsolute)
	}

	if err == nil {
		c.writeMessage(StatusFileOK, "Deleted dir "+pathAbsolute)
	} else {
		c.writeMessage(StatusActionNotTaken, fmt.Sprintf("Could not delete dir %s: %v", pathAbsolute, err))
	}

	return nil
}

func (c *clientHandler) handleRMDIR(params string) {
	if params == "" {
		c.writeMessage(StatusSyntaxErrorNotRecognised, "Missing path")

		return
	}

	p := c.absPath(params)

	if err := c.driver.RemoveAll(p); err == nil {
		c.writeMessage(StatusFileOK, "Removed dir "+p)
	} else {
		c.writeMessage(StatusActionNotTaken, fmt.Sprintf("Couldn't remove dir %s: %v", p, err))
	}
}

func (c *clientHandler) handleCDUP(_ string) error {
	parent, _ := path.Split(c.Path())
	if parent != "/" && strings.HasSuffix(parent, "/") {
		parent = parent[0 : len(parent)-1]
	}

	if _, err := c.driver.Stat(parent); err == nil {
		c.SetPath(parent)
		c.writeMessage(StatusFileOK, "CDUP worked on "+parent)
	} else {
		c.writeMessage(StatusActionNotTaken, fmt.Sprintf("CDUP issue: %v", err))
	}

	return nil
}

func (c *clientHandler) handlePWD(_ string) error {
	c.writeMessage(StatusPathCreated, fmt.Sprintf(`"%s" is the current directory`, quoteDoubling(c.Path())))

	return nil
}

func (c *clientHandler) checkLISTArgs(args string) string {
	result := args
	param := strings.ToLower(args)

	for _, arg := range supportedlistArgs {
		if strings.HasPrefix(param, arg) {
			// a check for a non-existent directory error is more appropriate here
			// but we cannot assume that the driver implementation will return an
			// os.IsNotExist error.
			if _, err := c.driver.Stat(args); err != nil {
				params := strings.SplitN(args, " ", 2)
				if len(params) == 1 {
					result = ""
				} else {
					result = params[1]
				}
			}
		}
	}

	return result
}

func (c *clientHandler) handleLIST(param string) error {
	info := fmt.Sprintf("LIST %v", param)

	if lister, _, err := c.openFileList(param, true); err == nil {
		c.transferListing(info, lister, func(tr io.Writer) error { return c.dirTransferLIST(tr, lister) })
	} else {
		if !c.isCommandAborted() {
			c.writeMessage(StatusFileActionNotTaken, fmt.Sprintf("Could not list: %v", err))
		}
	}

	return nil
}

func (c *clientHandler) handleNLST(param string) error {
	info := fmt.Sprintf("NLST %v", param)

	if lister, parentDir, err := c.openFileList(param, true); err == nil {
		c.transferListing(info, lister, func(tr io.Writer) error { return c.dirTransferNLST(tr, lister, parentDir) })
	} else {
		if !c.isCommandAborted() {
			c.writeMessage(StatusFileActionNotTaken, fmt.Sprintf("Could not list: %v", err))
		}
	}

	return nil
}

// transferListing sends a listing over the data connection. The lister is closed before the
// final reply: when the client hears that the listing is over, it is.
func (c *clientHandler) transferListing(info string, lister DirLister, write func(tr io.Writer) error) {
	tr, err := c.TransferOpen(info)
	if err != nil {
		c.closeFileList(lister)

		return
	}

	err = write(tr)
	c.closeFileList(lister)
	c.TransferClose(tr, err)
}

func (c *clientHandler) dirTransferNLST(writer io.Writer, lister DirLister, parentDir string) error {
	// Based on RFC 959 NLST is intended to return information that can be used
	// by a program to further process the files automatically.
	// So we return paths relative to the current working directory
	relative := c.getRelativePath(parentDir)

	return c.writeListing(writer, lister, "NLST", func(file os.FileInfo) string {
		return path.Join(relative, file.Name())
	})
}

func (c *clientHandler) handleMLSD(param string) error {
	if c.server.settings.DisableMLSD && !c.isCommandAborted() {
		c.writeMessage(StatusSyntaxErrorNotRecognised, "MLSD has been disabled")

		return nil
	}

	info := fmt.Sprintf("MLSD %v", param)

	if lister, _, err := c.openFileList(param, false); err == nil {
		c.transferListing(info, lister, func(tr io.Writer) error { return c.dirTransferMLSD(tr, lister) })
	} else {
		if !c.isCommandAborted() {
			c.writeMessage(StatusActionNotTaken, fmt.Sprintf("Could not list: %v", err))
		}
	}

	return nil
}

const (
	dateFormatStatTime      = "Jan _2 15:04"          // LIST date formatting with hour and minute
	dateFormatStatYear      = "Jan _2  2006"          // LIST date formatting with year
	dateFormatStatOldSwitch = time.Hour * 24 * 30 * 6 // 6 months ago
	dateFormatMLSD          = "20060102150405"        // MLSD date formatting
	fakeUser                = "ftp"
	fakeGroup               = "ftp"
)

func (c *clientHandler) fileStat(file os.FileInfo) string {
	modTime := file.ModTime()

	var dateFormat string

	if c.connectedAt.Sub(modTime) > dateFormatStatOldSwitch {
		dateFormat = dateFormatStatYear
	} else {
		dateFormat = dateFormatStatTime
	}

	return fmt.Sprintf(
		"%s 1 %s %s %12d %s %s",
		file.Mode(),
		fakeUser,
		fakeGroup,
		file.Size(),
		file.ModTime().Format(dateFormat),
		file.Name(),
	)
}

func (c *clientHandler) dirTransferLIST(writer io.Writer, lister DirLister) error {
	return c.writeListing(writer, lister, "LIST", c.fileStat)
}

func (c *clientHandler) dirTransferMLSD(writer io.Writer, lister DirLister) error {
	return c.writeListing(writer, lister, "MLSD", c.mlsxLine)
}

func (c *clientHandler) writeMLSxEntry(writer io.Writer, file os.FileInfo) error {
	_, err := io.WriteString(writer, c.mlsxLine(file)+"\r\n")
	if err != nil {
		err = fmt.Errorf("error writing MLSD entry: %w", err)
	}

	return err
}

// The facts of MLSD and MLST lines, in their order; a client chooses among them with OPTS
// MLST (RFC 3659, 7.9). (wharf)
const (
	mlstType uint32 = 1 << iota
	mlstSize
	mlstModify
)

var mlstFactNames = []struct { //nolint:gochecknoglobals
	bit  uint32
	name string
}{{mlstType, "type"}, {mlstSize, "size"}, {mlstModify, "modify"}}

// mlsxLine is an entry's line of MLSD and MLST, without its CRLF: the facts the client
// selected (all by default), then a space and the name.
func (c *clientHandler) mlsxLine(file os.FileInfo) string {
	hidden := c.mlstHidden.Load()

	var line strings.Builder

	if hidden&mlstType == 0 {
		if file.IsDir() {
			line.WriteString("Type=dir;")
		} else {
			line.WriteString("Type=file;")
		}
	}

	if hidden&mlstSize == 0 {
		fmt.Fprintf(&line, "Size=%d;", file.Size())
	}

	if hidden&mlstModify == 0 {
		line.WriteString("Modify=" + file.ModTime().UTC().Format(dateFormatMLSD) + ";")
	}

	line.WriteString(" " + file.Name())

	return line.String()
}

// mlstFeature is FEAT's MLST line: every fact, the selected ones marked with a star.
func (c *clientHandler) mlstFeature() string {
	hidden := c.mlstHidden.Load()
	line := "MLST "

	for _, f := range mlstFactNames {
		line += f.name
		if hidden&f.bit == 0 {
			line += "*"
		}

		line += ";"
	}

	return line
}

// handleOptsMLST selects the facts of MLSD and MLST lines: the known ones among those
// listed (an empty list selects none), and replies with the selection (RFC 3659, 7.9).
func (c *clientHandler) handleOptsMLST(args []string) error {
	var listed string
	if len(args) > 0 {
		listed = args[0]
	}

	hidden := mlstType | mlstSize | mlstModify
	reply := "MLST OPTS"
	selected := ""

	for _, f := range mlstFactNames {
		for _, want := range strings.Split(listed, ";") {
			if strings.EqualFold(strings.TrimSpace(want), f.name) {
				hidden &^= f.bit
				selected += f.name + ";"

				break
			}
		}
	}

	if selected != "" {
		reply += " " + selected
	}

	c.mlstHidden.Store(hidden)
	c.writeMessage(StatusOK, reply)

	return nil
}

// openFileList opens the listing of a LIST, NLST or MLSD: a directory's entries, or with
// filePathAllowed the file itself when param names a file. It returns the listed path's
// directory for NLST. Drivers with ClientDriverExtensionDirLister page through the directory;
// the listing of others is read whole, as before.
func (c *clientHandler) openFileList(param string, filePathAllowed bool) (DirLister, string, error) {
	if !c.server.settings.DisableLISTArgs {
		param = c.checkLISTArgs(param)
	}
	// directory or filePath
	listPath := c.absPath(param)
	c.SetListPath(listPath)

	// return list of single file if directoryPath points to file and filePathAllowed
	info, err := c.driver.Stat(listPath)
	if err != nil {
		if filePathAllowed && isGlob(path.Base(listPath)) {
			return c.openGlobList(listPath)
		}

		return nil, "", newFileAccessError("couldn't stat", err)
	}

	if !info.IsDir() {
		if filePathAllowed {
			return &sliceLister{files: []os.FileInfo{info}}, path.Dir(c.getListPath()), nil
		}

		return nil, "", errFileList
	}

	lister, err := c.openDirLister(listPath)

	return lister, c.getListPath(), err
}

// isGlob reports whether a name holds a wildcard of LIST and NLST patterns.
func isGlob(name string) bool { return strings.ContainsAny(name, "*?[") }

// openGlobList lists the entries of a directory whose names match the pattern of the last
// element of listPath (`NLST *.txt`, `LIST logs/2024-??-*`), as vsftpd and ProFTPD do for
// clients such as Windows ftp's mget: *, ? and [...] as in path.Match, and a leading dot
// matched only by a leading dot, as in a shell. Only the last element may hold wildcards;
// the pattern applies when no entry has that very name. (wharf)
func (c *clientHandler) openGlobList(listPath string) (DirLister, string, error) {
	dir, pattern := path.Dir(listPath), path.Base(listPath)
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, "", newFileAccessError("invalid pattern", err)
	}

	info, err := c.driver.Stat(dir)
	if err != nil {
		return nil, "", newFileAccessError("couldn't stat", err)
	}

	if !info.IsDir() {
		return nil, "", newFileAccessError("couldn't list", fs.ErrNotExist)
	}

	lister, err := c.openDirLister(dir)
	if err != nil {
		return nil, "", err
	}

	return &globLister{inner: lister, pattern: pattern}, dir, nil
}

// globLister hands on the entries of inner whose names match pattern.
type globLister struct {
	inner   DirLister
	pattern string
}

func (g *globLister) Next(limit int) ([]os.FileInfo, error) {
	for {
		files, err := g.inner.Next(limit)
		out := make([]os.FileInfo, 0, len(files))

		for _, f := range files {
			name := f.Name()
			if strings.HasPrefix(name, ".") && !strings.HasPrefix(g.pattern, ".") {
				continue
			}

			if ok, _ := path.Match(g.pattern, name); ok {
				out = append(out, f)
			}
		}

		if len(out) > 0 || err != nil || len(files) == 0 {
			return out, err
		}
	}
}

func (g *globLister) Close() error { return g.inner.Close() }

// openDirLister opens a directory's listing: paged with ClientDriverExtensionDirLister, else
// read whole with ClientDriverExtensionFileList or Open and Readdir(-1).
func (c *clientHandler) openDirLister(listPath string) (DirLister, error) {
	if dirLister, ok := c.driver.(ClientDriverExtensionDirLister); ok {
		return dirLister.ListDir(listPath)
	}

	var files []fs.FileInfo

	var err error

	if fileList, ok := c.driver.(ClientDriverExtensionFileList); ok {
		files, err = fileList.ReadDir(listPath)
	} else {
		directory, errOpenFile := c.driver.Open(listPath)
		if errOpenFile != nil {
			return nil, newFileAccessError("couldn't open directory", errOpenFile)
		}

		defer c.closeDirectory(listPath, directory)

		files, err = directory.Readdir(-1)
	}

	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}

	return &sliceLister{files: files}, nil
}

// closeFileList closes a listing, logging a failure.
func (c *clientHandler) closeFileList(lister DirLister) {
	if err := lister.Close(); err != nil {
		c.logger.Warn("Couldn't close listing", "err", err)
	}
}

// writeListing writes a listing to the data connection one batch of entries at a time
// through a buffer, so neither the entries nor the lines are held whole. line formats an
// entry's line without its CRLF. A line holding a control character is left out: its name
// cannot be written on one line (a CR or LF would end it and start a forged one, and an
// escaped name would be another name). The omissions are logged once, at the end.
func (c *clientHandler) writeListing(writer io.Writer, lister DirLister, command string,
	line func(file os.FileInfo) string,
) error {
	buf := bufio.NewWriterSize(writer, listingBufferSize)
	omitted := listingOmissions{}
	wrote := false

	defer c.logOmissions(command, c.getListPath(), &omitted)

	for {
		files, errNext := lister.Next(listingBatch)
		for _, file := range files {
			text := line(file)
			if hasControlChar(text) {
				omitted.add(file.Name())

				continue
			}

			if _, err := buf.WriteString(text + "\r\n"); err != nil {
				return newNetworkError("couldn't send "+command+" data", err)
			}

			wrote = true
		}

		if errors.Is(errNext, io.EOF) {
			break
		}

		if errNext != nil {
			if err := buf.Flush(); err != nil {
				return newNetworkError("couldn't send "+command+" data", err)
			}

			return newDriverError("couldn't list", errNext)
		}
	}

	if !wrote {
		// as upstream does for an empty listing: an empty write still runs a TLS handshake
		if _, err := writer.Write([]byte("")); err != nil {
			return newNetworkError("couldn't send "+command+" data", err)
		}

		return nil
	}

	if err := buf.Flush(); err != nil {
		return newNetworkError("couldn't send "+command+" data", err)
	}

	return nil
}

func (c *clientHandler) closeDirectory(directoryPath string, directory afero.File) {
	if errClose := directory.Close(); errClose != nil {
		c.logger.Error("Couldn't close directory", "err", errClose, "directory", directoryPath)
	}
}

func quoteDoubling(s string) string {
	if !strings.Contains(s, "\"") {
		return s
	}

	return strings.ReplaceAll(s, "\"", `""`)
}
