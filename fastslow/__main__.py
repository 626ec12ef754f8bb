from fastslow.cli import main

main()
