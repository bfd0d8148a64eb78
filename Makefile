# The two commands README.md opens with.
.PHONY: run test lint bench

run:  ## set up, then train + evaluate the default encoder on Fashion-MNIST
	scripts/setup.sh
	.venv/bin/alignuniform train --out runs/default --resume

test:  ## set up, then lint (style, formatting, the layer contracts) and run the test suite
	scripts/setup.sh --test
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q -n 2 --dist worksteal

bench:
	.venv/bin/python benchmarks/uniform_loss.py
