package tableau

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

const dqwContent = "94441d26-9a52-4a42-b0fb-3f94792d1aac"

func TestAddDataQualityWarning(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("POST "+sitePrefix+"/dataQualityWarnings/datasource/"+dqwContent, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPost, "tok-1")
		checkJSONBody(t, r, `{"dataQualityWarning":{"type":"WARNING","isActive":true,"message":"Refresh failed","isSevere":true}}`)
		writeBytes(w, http.StatusOK, "application/json", fixture(t, "dqw.json"))
	})
	got, err := env.client.AddDataQualityWarning(context.Background(), WarningContentDatasource, dqwContent,
		&DataQualityWarning{Type: "warning", Message: "Refresh failed", IsActive: true, IsSevere: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "c2e0e406-84fb-4f4e-9998-f20dd9306710" || got.Type != WarningTypeWarning || !got.IsActive || !got.IsSevere ||
		got.ContentID != dqwContent || got.Owner == nil || got.CreatedAt.Year() != 2021 {
		t.Errorf("warning = %+v", got)
	}
}

func TestDataQualityWarningsList(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  []string // ids
	}{
		{"two", string(fixture(t, "dqw_list.json")), []string{"c2e0e406-84fb-4f4e-9998-f20dd9306710", "d3f1f517-95ac-4f5f-8a09-a31ee0417821"}},
		{"empty list object", `{"dataQualityWarningList":{}}`, nil},
		{"no list", `{}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/dataQualityWarnings/datasource/"+dqwContent, func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodGet, "tok-1")
				writeJSON(w, http.StatusOK, tt.reply)
			})
			got, err := env.client.DataQualityWarnings(context.Background(), WarningContentDatasource, dqwContent)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, w := range got {
				ids = append(ids, w.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("ids = %v, want %v", ids, tt.want)
			}
			if len(got) == 2 && (got[1].IsActive || got[1].IsSevere || got[1].Type != WarningTypeStale || got[0].Message != "Hello, World!") {
				t.Errorf("warnings = %+v, %+v", got[0], got[1])
			}
		})
	}
}

func TestUpdateAndDeleteDataQualityWarning(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	id := "c2e0e406-84fb-4f4e-9998-f20dd9306710"
	env.mux.HandleFunc("PUT "+sitePrefix+"/dataQualityWarnings/"+id, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPut, "tok-1")
		checkJSONBody(t, r, `{"dataQualityWarning":{"type":"STALE","isActive":true,"message":"stale","isSevere":false}}`)
		writeBytes(w, http.StatusOK, "application/json", fixture(t, "dqw.json"))
	})
	env.mux.HandleFunc("DELETE "+sitePrefix+"/dataQualityWarnings/"+id, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodDelete, "tok-1")
		w.WriteHeader(http.StatusNoContent)
	})
	env.mux.HandleFunc("DELETE "+sitePrefix+"/dataQualityWarnings/gone", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, tableauError(404, "404003", "Not Found", "Data quality warning 'gone' could not be found."))
	})
	ctx := context.Background()
	if _, err := env.client.UpdateDataQualityWarning(ctx, id, &DataQualityWarning{Type: WarningTypeStale, Message: "stale", IsActive: true}); err != nil {
		t.Fatal(err)
	}
	if err := env.client.DeleteDataQualityWarning(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := env.client.DeleteDataQualityWarning(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete of an unknown warning = %v, want ErrNotFound", err)
	}
}

func TestDataQualityWarningInvalid(t *testing.T) {
	ok := &DataQualityWarning{Type: WarningTypeWarning, Message: "m", IsActive: true}
	tests := []struct {
		name string
		call func(c *Client) error
		want string
	}{
		{"nil warning", func(c *Client) error {
			_, err := c.AddDataQualityWarning(context.Background(), "datasource", dqwContent, nil)
			return err
		}, "warning is nil"},
		{"bad type", func(c *Client) error {
			_, err := c.AddDataQualityWarning(context.Background(), "datasource", dqwContent, &DataQualityWarning{Type: "BROKEN"})
			return err
		}, `type "BROKEN"`},
		{"no content type", func(c *Client) error {
			_, err := c.AddDataQualityWarning(context.Background(), "", dqwContent, ok)
			return err
		}, "content type"},
		{"no content id", func(c *Client) error {
			_, err := c.DataQualityWarnings(context.Background(), "datasource", " ")
			return err
		}, "id is empty"},
		{"no warning id", func(c *Client) error { return c.DeleteDataQualityWarning(context.Background(), "") }, "id is empty"},
		{"path in id", func(c *Client) error {
			_, err := c.UpdateDataQualityWarning(context.Background(), "a/b", ok)
			return err
		}, "not a LUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			if err := tt.call(env.client); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want containing %q", err, tt.want)
			}
			if env.signIns.Load() != 0 {
				t.Error("signed in for an invalid request")
			}
		})
	}
}

func TestDataQualityWarningsNeedVersion(t *testing.T) {
	env := setup(t, WithAPIVersion("3.4"))
	_, err := env.client.DataQualityWarnings(context.Background(), "datasource", dqwContent)
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("error = %v, want ErrUnsupportedVersion", err)
	}
}
