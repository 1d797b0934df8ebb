from dcgan_complete.cli import main

main()
