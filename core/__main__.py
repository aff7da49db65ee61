from reelface.cli.entry import run

run()
