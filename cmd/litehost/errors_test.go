package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/readapi"
)

// TestRuleStatusCoversEveryRule finds every domain.Error declared in the code (a call
// domain.Error("…") or a constant of type Error in package domain) and checks that ruleStatus
// maps it: a rule missing there would answer 500 to a client mistake.
func TestRuleStatusCoversEveryRule(t *testing.T) {
	mapped := map[string]bool{}
	for rule := range ruleStatus {
		mapped[string(rule)] = true
	}
	var rules []string
	fset := token.NewFileSet()
	for _, dir := range []string{"../../domain", "../../commands"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 1 {
					return true
				}
				if !isDomainError(call.Fun, f.Name.Name) {
					return true
				}
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					rules = append(rules, fmt.Sprintf("%s: %q", fset.Position(lit.Pos()), s))
					if !mapped[s] {
						t.Errorf("%s: rule %q has no entry in ruleStatus", fset.Position(lit.Pos()), s)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(rules) < 10 {
		t.Fatalf("found only %d rules; the scan is broken:\n%s", len(rules), strings.Join(rules, "\n"))
	}
}

func isDomainError(fun ast.Expr, pkg string) bool {
	switch f := fun.(type) {
	case *ast.SelectorExpr:
		id, ok := f.X.(*ast.Ident)
		return ok && id.Name == "domain" && f.Sel.Name == "Error"
	case *ast.Ident:
		return pkg == "domain" && f.Name == "Error"
	}
	return false
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantCode   string
	}{
		{commands.ErrNotFound, http.StatusNotFound, "NOT_FOUND"},
		{fmt.Errorf("load: %w", readapi.ErrNotFound), http.StatusNotFound, "NOT_FOUND"},
		{fmt.Errorf("append: %w", commands.ErrConflict), http.StatusConflict, "CONFLICT"},
		{fmt.Errorf("create: %w", commands.ErrIdempotencyKeyReused), http.StatusUnprocessableEntity, "IDEMPOTENCY_KEY_REUSED"},
		{domain.Invalid{"title": "required"}, http.StatusUnprocessableEntity, "VALIDATION_FAILED"},
		{readapi.InvalidQuery{"limit": "1-100"}, http.StatusUnprocessableEntity, "VALIDATION_FAILED"},
		{readapi.AuthError{Code: readapi.CodeAPIKeyExpired}, http.StatusUnauthorized, "API_KEY_EXPIRED"},
		{commands.BadRequest("INVALID_JSON", "x"), http.StatusBadRequest, "INVALID_JSON"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "SERVER_ERROR"},
		{domain.Error("a rule nobody mapped"), http.StatusInternalServerError, "SERVER_ERROR"},
	}
	for _, tt := range tests {
		got := classify(tt.err)
		if got.status != tt.wantStatus || got.code != tt.wantCode {
			t.Errorf("classify(%v) = %d %s, want %d %s", tt.err, got.status, got.code, tt.wantStatus, tt.wantCode)
		}
	}
	// A server error never leaks its detail.
	body := errorBody(errors.New("password=hunter2"), apiError{500, "SERVER_ERROR"})
	if strings.Contains(fmt.Sprint(body), "hunter2") {
		t.Errorf("500 body leaks the error: %v", body)
	}
}
