package commands_test

import (
	"errors"

	"github.com/litehost/litehost/commands"
)

func asHTTP(err error, he **commands.HTTPError) bool { return errors.As(err, he) }
