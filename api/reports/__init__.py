"""Reports and exports: the monthly report (HTML with print CSS, PDF) and tabular exports (CSV, XLSX)."""
