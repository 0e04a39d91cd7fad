package app

import (
	"context"
	"errors"
)

func runLoadtest(context.Context, []string, Env, Stdio, Options) error {
	return errors.New("not built yet")
}
