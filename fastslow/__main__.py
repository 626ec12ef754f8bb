from fastslow.cli import main

if __name__ == "__main__":  # not when a spawned worker (predictor eval --jobs) imports it
    main()
