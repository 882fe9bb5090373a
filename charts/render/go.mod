module github.com/ecr-operator/ecr-operator/charts/render

go 1.23
