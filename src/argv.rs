//! Link-line parsing: OsString argv -> [`LinkPlan`]. (Being written; see DESIGN.md.)
