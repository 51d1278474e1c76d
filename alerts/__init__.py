"""Alerts: rules on the live stream → alerts → grid cases (网格工单) in the relational store."""
