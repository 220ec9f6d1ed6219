package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/projections"
)

// newRootCmd builds the command tree. getenv and the writers are injected so tests can run the
// CLI in-process.
func newRootCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "litehost",
		Short:         "Litehost: static-site hosting on an event-sourced backend",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)

	root.AddCommand(&cobra.Command{
		Use:   "serve",
		Short: "Run migrations, the projectors, the process managers and the HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), getenv, stderr, func(ctx context.Context, a *app) error {
				if err := a.cfg.checkDelivery(); err != nil {
					return fmt.Errorf("configuration:\n%w", err)
				}
				a.logger.Info("starting litehost", a.cfg.logAttrs()...)
				if a.cfg.Dev && getenv("LITEHOST_SECRET") == "" {
					a.logger.Warn("LITEHOST_DEV=true without LITEHOST_SECRET: using the public development secret; never do this in production")
				}
				for _, w := range databaseWarnings(ctx, a.cfg, a.pool) {
					a.logger.Warn(w)
				}
				return a.serve(ctx)
			})
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "migrate",
		Short: "Create the database if needed and apply every migration, then exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), getenv, stderr, func(context.Context, *app) error {
				fmt.Fprintln(stdout, "migrations applied")
				return nil
			})
		},
	})
	root.AddCommand(projectionsCmd(getenv, stdout, stderr))
	root.AddCommand(adminCmd(getenv, stdout, stderr))
	root.AddCommand(eventsCmd(getenv, stdout, stderr))
	root.AddCommand(auditCmd(getenv, stdout, stderr))
	return root
}

func projectionsCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "projections", Short: "Inspect and rebuild the read models"}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each projector's state, checkpoint and lag",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withApp(c.Context(), getenv, stderr, func(ctx context.Context, a *app) error {
				sts, err := projections.StatusFromDB(ctx, a.pool)
				if err != nil {
					return err
				}
				if err := projections.FillLag(ctx, a.store, a.now(), sts); err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(sts)
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSTATE\tCHECKPOINT\tLAG EVENTS\tLAG SECONDS\tLAST ERROR")
				for _, s := range sts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%s\n", s.Name, s.State, s.Checkpoint, s.LagEvents, s.LagSeconds, s.LastError)
				}
				return tw.Flush()
			})
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rebuild := &cobra.Command{
		Use:   "rebuild [name...]",
		Short: "Truncate read models and replay them from the event log (all when no name is given)",
		Long: "Stop the servers first, or let them keep running: a rebuilt projector's checkpoint is\n" +
			"reset in the same transaction as its tables, and running instances continue from it.",
		RunE: func(c *cobra.Command, names []string) error {
			return withApp(c.Context(), getenv, stderr, func(ctx context.Context, a *app) error {
				selected, err := selectProjectors(a.projectors(), names)
				if err != nil {
					return err
				}
				progress := func(done, total int) {}
				if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					bar := progressbar.Default(-1, "replaying events")
					progress = func(done, total int) {
						if total > 0 {
							bar.ChangeMax(total)
						}
						_ = bar.Set(done)
					}
					defer bar.Finish()
				}
				if err := projections.Rebuild(ctx, a.pool, a.store, a.logger, progress, selected...); err != nil {
					return err
				}
				for _, p := range selected {
					fmt.Fprintln(stdout, "rebuilt", p.Name)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(status, rebuild)
	return cmd
}

func selectProjectors(all []projections.Projector, names []string) ([]projections.Projector, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []projections.Projector
	for _, n := range names {
		found := false
		for _, p := range all {
			if p.Name == n {
				out, found = append(out, p), true
			}
		}
		if !found {
			return nil, fmt.Errorf("no projector named %q", n)
		}
	}
	return out, nil
}

func adminCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Operator commands (they append events like any other command)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "set-plan <email-or-phone> <tier>",
		Short: "Change an account's plan (free, starter, creator, pro, scale)",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseIdentifier(args[0])
			if err != nil {
				return err
			}
			return withApp(c.Context(), getenv, stderr, func(ctx context.Context, a *app) error {
				ctx = events.WithMetadata(ctx, operatorMetadata("set-plan"))
				accounts := commands.NewAccounts(a.store, a.keyring, commands.NewPGRevocations(a.pool), a.now)
				if _, err := accounts.SetPlan(ctx, id, args[1]); err != nil {
					if errors.Is(err, commands.ErrNotFound) {
						return fmt.Errorf("no account for %s", id.Value)
					}
					return err
				}
				fmt.Fprintf(stdout, "%s is now on the %s plan\n", id.Value, args[1])
				return nil
			})
		},
	})
	cmd.AddCommand(domainsCmd(getenv, stdout, stderr))
	return cmd
}

func domainsCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "domains", Short: "Add custom domains and set their status (as the dashboard would)"}
	var owner, status string
	add := &cobra.Command{
		Use:   "add --owner <email-or-phone> [--status S] <hostname>",
		Short: "Register a custom domain for an account (status active unless --status is given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseIdentifier(owner)
			if err != nil {
				return fmt.Errorf("--owner: %w", err)
			}
			return withApp(c.Context(), getenv, stderr, func(ctx context.Context, a *app) error {
				ctx = commands.WithCommandID(events.WithMetadata(ctx, operatorMetadata("domains-add")), uuid.New())
				res, err := a.domains.AddDomain(ctx, id, args[0], status)
				if err != nil {
					return explainAdminError(err, id.Value)
				}
				fmt.Fprintf(stdout, "%s added for %s with status %s (id %s)\n", res.Hostname, id.Value, res.Status, res.ID)
				return nil
			})
		},
	}
	add.Flags().StringVar(&owner, "owner", "", "e-mail address or E.164 phone number of the owning account")
	add.Flags().StringVar(&status, "status", "", "pending_verification, propagation_wait, active, error_dns, ssl_pending or ssl_active")
	_ = add.MarkFlagRequired("owner")
	set := &cobra.Command{
		Use:   "set-status <hostname> <status>",
		Short: "Change a custom domain's status",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			return withApp(c.Context(), getenv, stderr, func(ctx context.Context, a *app) error {
				ctx = commands.WithCommandID(events.WithMetadata(ctx, operatorMetadata("domains-set-status")), uuid.New())
				if _, err := a.domains.SetDomainStatus(ctx, args[0], args[1]); err != nil {
					return explainAdminError(err, args[0])
				}
				fmt.Fprintf(stdout, "%s is now %s\n", args[0], args[1])
				return nil
			})
		},
	}
	cmd.AddCommand(add, set)
	return cmd
}

// explainAdminError turns the errors an operator can cause into plain sentences.
func explainAdminError(err error, subject string) error {
	var invalid domain.Invalid
	var rule domain.Error
	switch {
	case errors.Is(err, commands.ErrNotFound):
		return fmt.Errorf("%s: not found", subject)
	case errors.As(err, &invalid):
		return fmt.Errorf("%s: %v", subject, invalid)
	case errors.As(err, &rule):
		return fmt.Errorf("%s: %s", subject, string(rule))
	}
	return err
}

// parseIdentifier reads an e-mail address or an E.164 phone number from the command line.
func parseIdentifier(s string) (commands.Identifier, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "+") {
		v, err := otp.NormalizePhone(s)
		return commands.Identifier{Kind: otp.ChannelPhone, Value: v}, err
	}
	v, err := otp.NormalizeEmail(s)
	return commands.Identifier{Kind: otp.ChannelEmail, Value: v}, err
}

// operatorMetadata is the metadata of events an operator appends from the command line.
func operatorMetadata(command string) events.Metadata {
	user := os.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	id := uuid.NewString()
	return events.Metadata{CorrelationID: id, RequestID: id, Actor: events.SystemActor("admin"),
		// The OS user is a product token, not a comment: the log keeps user agents without their
		// comments (events.ReduceUserAgent).
		UserAgent: "litehost-cli/" + command + " os-user/" + strings.Join(strings.Fields(user), "_")}
}
