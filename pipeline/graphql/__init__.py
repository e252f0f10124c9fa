"""The GraphQL API of the pipeline app: leads, activities, deals and their histories."""
