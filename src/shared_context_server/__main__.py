from shared_context_server.cli.main import main

main()
