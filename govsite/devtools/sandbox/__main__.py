"""`python -m govsite.devtools.sandbox --port 4000 --db ... --master-key ...`"""

from govsite.devtools.sandbox.server import main

if __name__ == "__main__":
    main()
