from ledgerline.cli import entrypoint

entrypoint()
