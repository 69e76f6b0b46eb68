"""Evaluation protocols (LFW cross-resolution, QMUL-SurvFace), metrics and reports."""
