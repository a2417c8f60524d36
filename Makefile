# The README's test command is `make test`; .ci/run and GitHub Actions call it too.
.PHONY: test sync nbtest pytest export clean bench

test: sync nbtest pytest

sync:            ## nbdev_clean and nbdev_export must leave the tree unchanged
	python tests/check_sync.py

nbtest:          ## the test cells of every notebook (nbdev_test; `slow` and `gpu` cells are skipped); checkpoints to a temp dir
	d=$$(mktemp -d); NEOXCOURSE_CHECKPOINTS=$$d nbdev_test --n_workers 2 --timing; s=$$?; rm -rf $$d; exit $$s

pytest:          ## every notebook headless through papermill with the smoke config, and the integration tests
	python -m pytest -q --durations=15 tests

export:
	nbdev_export

clean:
	nbdev_clean
