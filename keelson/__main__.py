from keelson.cli import main

main()
