"""One run and its store: training a run start to finish (runner), its run directory (rundir, atomic),
checkpoints (checkpoint), evaluation callbacks, provenance, tracking, parameter counts, saved
policies (saved) and routing arrays (routing)."""
