package tableau_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// TestSimDataQualityWarnings runs the warning calls against the simulator,
// both renderings: add, list, update, delete, and what Tableau refuses.
func TestSimDataQualityWarnings(t *testing.T) {
	srv := newSim(t)
	ds := srv.AddDatasource("Orders", "Finance")
	wb := srv.AddWorkbook("Sales", "Finance")
	theirs := srv.AddDataQualityWarning(ds, "DEPRECATED", "Use Orders v2")
	c := newSimClient(t, srv)
	ctx := ctxT(t)

	w, err := c.AddDataQualityWarning(ctx, tableau.WarningContentDatasource, ds,
		&tableau.DataQualityWarning{Type: tableau.WarningTypeWarning, Message: "refresh failed", IsActive: true, IsSevere: true})
	if err != nil {
		t.Fatal(err)
	}
	if w.ID == "" || w.ContentID != ds || w.Type != tableau.WarningTypeWarning || !w.IsActive || !w.IsSevere || w.Message != "refresh failed" {
		t.Fatalf("added = %+v", w)
	}
	// One warning of each type on a piece of content.
	_, err = c.AddDataQualityWarning(ctx, tableau.WarningContentDatasource, ds, &tableau.DataQualityWarning{Type: tableau.WarningTypeWarning, IsActive: true})
	var te *tableau.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusConflict {
		t.Fatalf("second WARNING = %v, want a 409", err)
	}
	list, err := c.DataQualityWarnings(ctx, tableau.WarningContentDatasource, ds)
	if err != nil || len(list) != 2 || list[0].ID != theirs || list[1].ID != w.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	upd, err := c.UpdateDataQualityWarning(ctx, w.ID, &tableau.DataQualityWarning{Type: tableau.WarningTypeStale, Message: "stale", IsActive: true})
	if err != nil || upd.Type != tableau.WarningTypeStale || upd.IsSevere || upd.Message != "stale" {
		t.Fatalf("update = %+v, %v", upd, err)
	}
	if err := c.DeleteDataQualityWarning(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDataQualityWarning(ctx, w.ID); !errors.Is(err, tableau.ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	if left := srv.DataQualityWarnings(ds); len(left) != 1 || left[0].ID != theirs {
		t.Fatalf("left on the data source: %+v; want only the person's warning", left)
	}

	// Workbooks take no warnings; unknown data sources are 404s.
	_, err = c.AddDataQualityWarning(ctx, "workbook", wb, &tableau.DataQualityWarning{Type: tableau.WarningTypeWarning, IsActive: true})
	if !errors.As(err, &te) || te.StatusCode != http.StatusBadRequest {
		t.Errorf("warning on a workbook = %v, want a 400", err)
	}
	if _, err := c.DataQualityWarnings(ctx, tableau.WarningContentDatasource, wb); !errors.Is(err, tableau.ErrNotFound) {
		t.Errorf("warnings of a workbook's id as a data source = %v, want ErrNotFound", err)
	}

}
