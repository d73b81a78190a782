"""Past one process: a video run in two phases (analysis once, synthesis of whole segments
by N workers) and many swap jobs at once, on local processes or a Ray cluster.

`plan` is the file between the phases, `planning` the analysis pass that writes it,
`segment_work` what one worker does with one segment, `local` and `ray_cluster` the two
schedulers behind one interface (`scheduler`), `two_phase` the coordinator of a run and
`batch` the many-jobs runner.
"""
