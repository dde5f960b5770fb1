from neuronetz_gateway.cli.main import main

main()
