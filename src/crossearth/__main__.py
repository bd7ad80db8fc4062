from crossearth.cli import main

main()
