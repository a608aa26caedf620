"""The kit's workflows: the ``mobilekit`` command line (``mobilekit.cli``), the tasks' jobs
(train, export, bench, demo clip, report), the quickstarts and the experiments (zoo, binary,
optimize, QSFM), run folders, reports and plots. Importing it loads nothing heavy."""
