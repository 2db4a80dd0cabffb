package tableautest

import "fmt"

// AddLargeSite fills s with the large site the lineage benchmarks share:
// 5,000 published data sources over 20,000 Snowflake tables (four tables
// each; one in twenty reads two of them through custom SQL; one in three is
// live), 1,000 workbooks that read two published data sources each, and 500
// workbooks with an embedded extract over four tables. It returns the
// tables' names as database.schema.table.
func (s *Server) AddLargeSite() []string {
	table := func(i int) TableRef {
		return TableRef{Database: "ANALYTICS", Schema: fmt.Sprintf("S%02d", i%50), Name: fmt.Sprintf("T%05d", i), ConnectionType: "snowflake"}
	}
	ds := make([]string, 5000)
	for i := range ds {
		opts := []ItemOption{ReadsTables(table(4*i), table(4*i+1), table(4*i+2), table(4*i+3))}
		if i%20 == 0 {
			opts = []ItemOption{ReadsTables(table(4*i), table(4*i+1)),
				WithCustomSQL(CustomSQL{Query: "select ...", Tables: []TableRef{table(4*i + 2), table(4*i + 3)}})}
		}
		if i%3 == 0 {
			opts = append(opts, NoExtract())
		}
		ds[i] = s.AddDatasource(fmt.Sprintf("ds-%04d", i), fmt.Sprintf("P%02d", i%40), opts...)
	}
	for i := range 1000 {
		s.AddWorkbook(fmt.Sprintf("wb-%04d", i), fmt.Sprintf("P%02d", i%40), UsesDatasources(ds[(2*i)%5000], ds[(2*i+1)%5000]))
	}
	for i := range 500 {
		s.AddWorkbook(fmt.Sprintf("embedded-%03d", i), "Embedded", ReadsTables(table(8*i), table(8*i+1), table(8*i+2), table(8*i+3)))
	}
	keys := make([]string, 20000)
	for i := range keys {
		t := table(i)
		keys[i] = t.Database + "." + t.Schema + "." + t.Name
	}
	return keys
}
