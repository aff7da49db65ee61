from reelface.cli import main

main()
