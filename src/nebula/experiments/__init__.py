"""Experiments: runs side by side. :mod:`grid` trains and evaluates variants x seeds with baselines
(``nebula compare``, ``nebula demo``), :mod:`tables` aggregates them, :mod:`page` draws the figures and
the report."""
