"""Pure array solvers (numpy and torch backends); no scikit-learn estimators here."""
