// Command wsconform runs the RFC 6455 conformance suite of package
// conformance against a running WebSocket server, for testing a deployed
// wspushd:
//
//	wsconform -addr 127.0.0.1:8080 -max-message 65536
//
// -max-message must be the server's --max-message. It prints one line per
// case and the totals, and exits 1 when a case failed (known server
// failures count only with -strict), 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/wspush/wspush/conformance"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsconform", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "the server's WebSocket listener, host:port")
	path := fs.String("path", "/ws", "upgrade request target")
	maxMessage := fs.Int("max-message", 65536, "the server's --max-message, bytes")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of each case")
	runRE := fs.String("run", "", "run only the cases whose \"<id> <description>\" matches this regexp")
	origin := fs.String("origin", "", "Origin header for the upgrade requests (for servers with --allowed-origins)")
	strict := fs.Bool("strict", false, "count known server failures as failures")
	list := fs.Bool("list", false, "list the cases and exit")
	compression := fs.Bool("compression", false, "the server runs with --compression --client-publish: run the permessage-deflate sections 12 and 13")
	quiet := fs.Bool("q", false, "print only the cases that did not pass, the totals and the known failures")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsconform: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var filter *regexp.Regexp
	if *runRE != "" {
		var err error
		if filter, err = regexp.Compile(*runRE); err != nil {
			fmt.Fprintln(stderr, "wsconform: -run:", err)
			return 2
		}
	}
	cfg := conformance.Config{MaxMessage: *maxMessage, CaseTimeout: *timeout, Path: *path, Compression: *compression}
	if *origin != "" {
		cfg.Header = http.Header{"Origin": {*origin}}
	}
	var results []conformance.Result
	for _, c := range conformance.Cases(cfg) {
		if filter != nil && !filter.MatchString(c.Name()) {
			continue
		}
		if *list {
			fmt.Fprintf(stdout, "%s %s %s\n", c.ID, c.Section, c.Desc)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		results = append(results, conformance.RunCase(ctx, *addr, cfg, c))
	}
	if *list {
		return 0
	}
	report := conformance.WriteReport
	if *quiet {
		report = conformance.WriteSummary
	}
	t := report(stdout, results)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "wsconform: interrupted")
		return 1
	}
	if t.Failed > 0 || (*strict && t.KnownFailed > 0) {
		return 1
	}
	return 0
}
