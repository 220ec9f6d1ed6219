// Command esdbemu runs the EventStoreDB emulator as its own process, for tests that must not link
// EventStore-Client-Go (the KurrentDB client registers the same protobuf names). It prints the
// connection string as its first line on stdout and serves until stdin closes or a signal
// arrives. Test-only: it keeps everything in memory.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/litehost/litehost/events/esdbemu"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "esdbemu:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := esdbemu.Start(ctx, esdbemu.WithAddr(*addr), esdbemu.WithLogger(logger))
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Println(srv.URL())

	// The parent test owns our lifetime: when it closes our stdin (or dies), we stop.
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	}
	return nil
}
